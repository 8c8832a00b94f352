package txn

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// refDiffRuns is the byte-at-a-time definition diffRuns must match.
func refDiffRuns(nb, ob []byte) [][2]int {
	var out [][2]int
	for i := 0; i < len(nb); {
		if i < len(ob) && nb[i] == ob[i] {
			i++
			continue
		}
		start, end := i, i+1
		for k := end; k < len(nb) && k-end < diffGap; k++ {
			if k >= len(ob) || nb[k] != ob[k] {
				end = k + 1
			}
		}
		out = append(out, [2]int{start, end})
		i = end
	}
	return out
}

// TestDiffRuns: the word-at-a-time diff finds exactly the runs of the
// byte-at-a-time one, for changes dense and sparse, gaps just under and
// just over diffGap, and old data shorter than the new.
func TestDiffRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 1))
	for trial := range 3000 {
		n := rng.IntN(600)
		ob := make([]byte, n)
		for i := range ob {
			ob[i] = byte(rng.IntN(3)) // few values: equal bytes happen
		}
		nb := slices.Clone(ob)
		switch trial % 4 {
		case 0: // scattered single bytes
			for range rng.IntN(12) {
				if n > 0 {
					nb[rng.IntN(n)] ^= byte(1 + rng.IntN(255))
				}
			}
		case 1: // two runs with a gap around diffGap
			if n > 200 {
				a := rng.IntN(50)
				gap := diffGap - 2 + rng.IntN(5)
				for i := a; i < a+20; i++ {
					nb[i]++
				}
				for i := a + 20 + gap; i < min(n, a+40+gap); i++ {
					nb[i]++
				}
			}
		case 2: // random new bytes against random old
			for i := range nb {
				nb[i] = byte(rng.IntN(3))
			}
		case 3: // the file grew: old is a prefix
			if n > 0 {
				ob = ob[:rng.IntN(n)]
				nb[rng.IntN(n)]++
			}
		}
		var got [][2]int
		diffRuns(nb, ob, func(s, e int) error { got = append(got, [2]int{s, e}); return nil })
		if want := refDiffRuns(nb, ob); !slices.Equal(got, want) {
			t.Fatalf("trial %d (n %d, old %d): runs %v, want %v", trial, n, len(ob), got, want)
		}
	}
}
