package library

import (
	"fmt"
	"testing"
)

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"0/1", Shard{0, 1}, true}, {"3/8", Shard{3, 8}, true}, {" 7 / 8 ", Shard{7, 8}, true},
		{"8/8", Shard{}, false}, {"-1/4", Shard{}, false}, {"1/0", Shard{}, false},
		{"1", Shard{}, false}, {"a/b", Shard{}, false}, {"", Shard{}, false},
	} {
		got, err := ParseShard(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseShard(%q) = %v, %v", c.in, got, err)
		}
	}
}

// TestShardsPartition: every image is in exactly one shard of N, whatever
// the mount point of the library, and the shards are not lopsided.
func TestShardsPartition(t *testing.T) {
	const n, images = 8, 2000
	count := make([]int, n)
	for k := 0; k < images; k++ {
		rel := fmt.Sprintf("site%d/vm-%04d.qcow2", k%7, k)
		in := 0
		for i := 0; i < n; i++ {
			s := Shard{i, n}
			a, b := s.Has("/srv/lib", "/srv/lib/"+rel), s.Has("/mnt/x/lib", "/mnt/x/lib/"+rel)
			if a != b {
				t.Fatalf("%s: shard %d differs between mount points", rel, i)
			}
			if a {
				in++
				count[i]++
			}
		}
		if in != 1 {
			t.Fatalf("%s is in %d shards of %d", rel, in, n)
		}
	}
	for i, c := range count {
		if c < images/n/2 || c > images/n*2 {
			t.Errorf("shard %d holds %d of %d images", i, c, images)
		}
	}
}

func TestRelTo(t *testing.T) {
	for _, c := range [][3]string{
		{"/lib", "/lib/a/b.vhdx", "a/b.vhdx"},
		{"/lib/b.vhdx", "/lib/b.vhdx", "b.vhdx"},
		{"/other", "/lib/b.vhdx", "b.vhdx"},
		{"lib", "lib/x/y.img", "x/y.img"},
	} {
		if got := RelTo(c[0], c[1]); got != c[2] {
			t.Errorf("RelTo(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
