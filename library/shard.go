package library

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strconv"
	"strings"
)

// Shard is one of N disjoint parts of a library (I in 0..N-1). The zero
// value (N 0) is the whole library.
type Shard struct{ I, N int }

// ParseShard reads "I/N" as --shard takes it.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("--shard takes I/N (as 3/8), not %q", s)
	}
	if n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("--shard %s: I must be from 0 to N-1 and N at least 1", s)
	}
	return Shard{I: i, N: n}, nil
}

// Whole reports whether the shard is the whole library.
func (s Shard) Whole() bool { return s.N <= 1 }

// String is the shard as --shard takes it.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }

// Of is the shard an image belongs to among n: a hash (FNV-1a, 64 bits) of
// its path relative to the library, with / as separator, so the answer is
// the same on every host that sees the library at any mount point.
func Of(rel string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(filepath.ToSlash(filepath.Clean(rel))))
	return int(h.Sum64() % uint64(n))
}

// Has reports whether the image at path, found under root, is in the
// shard. An image given by itself (root is the image, or path is not
// below root) counts by its file name.
func (s Shard) Has(root, path string) bool {
	if s.Whole() {
		return true
	}
	return Of(RelTo(root, path), s.N) == s.I
}

// RelTo is path relative to root, or its base name when it is not below
// root.
func RelTo(root, path string) string {
	ar, err1 := filepath.Abs(root)
	ap, err2 := filepath.Abs(path)
	if err1 == nil && err2 == nil {
		if rel, err := filepath.Rel(ar, ap); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return filepath.Base(path)
}
