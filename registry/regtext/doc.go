// Package regtext reads and writes the text format of regedit (.reg files):
// "REGEDIT4" and "Windows Registry Editor Version 5.00", in UTF-16LE with a
// byte order mark or in UTF-8.
//
// Parse turns a file into a list of operations (Op) the caller applies to a
// hive, e.g. with Apply; Export prints a key's subtree.
package regtext
