"""What the chapters read and conclude from stage results: typed rows (`benchmarks`, `probes`), statistics,
verdicts and chapter 7's co-design evidence."""
