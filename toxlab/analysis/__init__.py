"""What the chapters conclude from stage results: statistics, verdicts and chapter 7's co-design evidence."""
