package hive

// ReadCorpus gives the external tests the shared, cached corpus reader.
var ReadCorpus = readCorpus
