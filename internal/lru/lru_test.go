package lru

import (
	"fmt"
	"sync"
	"testing"
)

func TestEvictionOrder(t *testing.T) {
	tests := []struct {
		name  string
		max   int
		puts  []string // key:cost pairs as "k"
		cost  int
		touch string // a key read before the last put
		want  []string
		gone  []string
	}{
		{name: "fits", max: 3, puts: []string{"a", "b", "c"}, cost: 1, want: []string{"a", "b", "c"}},
		{name: "oldest goes", max: 3, puts: []string{"a", "b", "c", "d"}, cost: 1, want: []string{"b", "c", "d"}, gone: []string{"a"}},
		{name: "a read keeps it", max: 3, puts: []string{"a", "b", "c", "d"}, cost: 1, touch: "a", want: []string{"a", "c", "d"}, gone: []string{"b"}},
		{name: "by cost", max: 10, puts: []string{"a", "b", "c"}, cost: 4, want: []string{"b", "c"}, gone: []string{"a"}},
		{name: "one too big stays alone", max: 3, puts: []string{"a", "b"}, cost: 5, want: []string{"b"}, gone: []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New[string, int](tc.max)
			for i, k := range tc.puts {
				if i == len(tc.puts)-1 && tc.touch != "" {
					if _, ok := c.Get(tc.touch); !ok {
						t.Fatalf("%s missing before the last put", tc.touch)
					}
				}
				c.Put(k, i, tc.cost)
			}
			for _, k := range tc.want {
				if _, ok := c.Get(k); !ok {
					t.Errorf("%s was evicted", k)
				}
			}
			for _, k := range tc.gone {
				if _, ok := c.Get(k); ok {
					t.Errorf("%s was kept", k)
				}
			}
			if c.Cost() > tc.max && c.Len() > 1 {
				t.Errorf("cost %d over the bound %d with %d values", c.Cost(), tc.max, c.Len())
			}
		})
	}
}

func TestStampAfterClear(t *testing.T) {
	c := New[int, string](10)
	ep := c.Stamp()
	c.Clear()
	c.PutAt(ep, 1, "stale", 1)
	if _, ok := c.Get(1); ok {
		t.Error("a value loaded before Clear was stored after it")
	}
	c.PutAt(c.Stamp(), 1, "fresh", 1)
	if v, ok := c.Get(1); !ok || v != "fresh" {
		t.Errorf("Get = %q %v", v, ok)
	}
}

func TestRemoveIfAndReplace(t *testing.T) {
	c := New[int, int](100)
	for i := 0; i < 10; i++ {
		c.Put(i, i, 2)
	}
	c.Put(3, 30, 5) // replacing changes the cost
	if c.Cost() != 9*2+5 {
		t.Errorf("cost %d, want %d", c.Cost(), 9*2+5)
	}
	c.RemoveIf(func(k int) bool { return k%2 == 0 })
	c.Remove(9)
	if c.Len() != 4 || c.Cost() != 3*2+5 {
		t.Errorf("after removals: %d values, cost %d", c.Len(), c.Cost())
	}
	if v, _ := c.Get(3); v != 30 {
		t.Errorf("Get(3) = %d", v)
	}
}

func TestConcurrent(t *testing.T) {
	c := New[string, int](50)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := fmt.Sprint(i % 97)
				if v, ok := c.Get(k); ok && v != i%97 {
					t.Errorf("Get(%s) = %d", k, v)
					return
				}
				c.Put(k, i%97, 1+g%3)
				if i%500 == 0 {
					c.RemoveIf(func(s string) bool { return len(s) == 1 })
				}
			}
		}(g)
	}
	wg.Wait()
	if c.Cost() > 50 {
		t.Errorf("cost %d over the bound", c.Cost())
	}
}
