package txn

import (
	"slices"
	"testing"
)

// TestInPlaceWritesMerge: regions of one file within applyGap of each
// other become one write, inside the file's old length only, never
// across files, gaps over applyGap or maxChunk, and the regions' bytes
// are counted, not the gaps'.
func TestInPlaceWritesMerge(t *testing.T) {
	jfiles := []jfile{{OldLen: 1 << 30, NewLen: 1 << 30}, {OldLen: 10000, NewLen: 20000}}
	todo := []pending{
		{0, 0, 100}, {0, 200, 50}, // 100 bytes apart: merged
		{0, 250 + applyGap + 1, 8}, // one byte too far
		{0, 250 + 2*applyGap + 1, 8},
		{1, 9000, 10}, {1, 9500, 10}, // file 1, inside its old length
		{1, 10200, 10},                                         // starts past the old length: alone
		{0, 1 << 22, maxChunk - 10}, {0, 1<<22 + maxChunk, 10}, // over maxChunk
	}
	got := inPlaceWrites(todo, jfiles)
	want := []inPlaceWrite{
		{pending{0, 0, 250}, 150},
		{pending{0, 250 + applyGap + 1, applyGap + 8}, 16},
		{pending{1, 9000, 510}, 20},
		{pending{1, 10200, 10}, 10},
		{pending{0, 1 << 22, maxChunk - 10}, maxChunk - 10},
		{pending{0, 1<<22 + maxChunk, 10}, 10},
	}
	if !slices.Equal(got, want) {
		t.Errorf("inPlaceWrites:\n got %v\nwant %v", got, want)
	}
}
