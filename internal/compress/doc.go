// Package compress holds the decompressors the engines read Windows data
// with, as pure functions of their input: LZNT1 (NTFS compressed
// streams), XPRESS Huffman and LZX in their WIM/WOF chunk form (NTFS
// "System Compression", CompactOS) and LZX in its cabinet form (update
// packages). None of them knows about a volume or a file; every one has
// a fuzz target here.
package compress
