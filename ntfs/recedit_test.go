package ntfs

import "testing"

// Attributes of one type sit in a record in the order ntfs-3g's
// ntfs_attr_find walks them (case-insensitive first, then exact): a
// stream put after one that collates later is invisible to it.
func TestCollateAttrName(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "Zone.Identifier", -1},
		{"offvm.scan", "Zone.Identifier", -1}, // bytes would say 'o' > 'Z'
		{"Zone.Identifier", "offvm.scan", 1},
		{"$I30", "$SII", -1},
		{"ABC", "abc", -1}, // case tie: exact code units
		{"abc", "ABC", 1},
		{"WofCompressedData", "wofcompresseddata", -1},
		{"ab", "ABC", -1}, // a prefix first
	} {
		if got := collateAttrName(c.a, c.b); got != c.want {
			t.Errorf("collateAttrName(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
