"""Pure logic: names, filenames, metadata and archive rules, problem types. No network, no database."""
