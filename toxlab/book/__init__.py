"""The book: building it (`builder`), what each chapter calls first (`notebook`), figures (`plots`), the README
tables (`report`) and bringing a GPU run home (`gpu_run`)."""
