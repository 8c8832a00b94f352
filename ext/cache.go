package ext

import (
	"container/list"
	"sync"
)

// lru is a small least-recently-used cache bounded by a total cost (entries,
// bytes: whatever the caller counts). Values are shared with callers and
// must be treated as read-only.
type lru[K comparable, V any] struct {
	mu   sync.Mutex
	max  int
	cost int
	ll   *list.List
	m    map[K]*list.Element
	// epoch counts clears: a value loaded before a clear (while a write
	// was changing the disk) is not stored after it.
	epoch uint64
}

type lruItem[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, ll: list.New(), m: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

// stamp is the epoch to pass to putAt for a value about to be loaded.
func (c *lru[K, V]) stamp() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// putAt stores v unless the cache was cleared since stamp returned ep.
func (c *lru[K, V]) putAt(ep uint64, k K, v V, cost int) {
	c.mu.Lock()
	stale := c.epoch != ep
	c.mu.Unlock()
	if !stale {
		c.put(k, v, cost)
	}
}

// put stores v; two goroutines that missed the same key both put, and the
// later one wins, which is harmless since both loaded the same bytes.
func (c *lru[K, V]) put(k K, v V, cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		it := e.Value.(*lruItem[K, V])
		c.cost += cost - it.cost
		it.val, it.cost = v, cost
		c.ll.MoveToFront(e)
	} else {
		c.m[k] = c.ll.PushFront(&lruItem[K, V]{key: k, val: v, cost: cost})
		c.cost += cost
	}
	for c.cost > c.max && c.ll.Len() > 1 {
		e := c.ll.Back()
		it := e.Value.(*lruItem[K, V])
		c.ll.Remove(e)
		delete(c.m, it.key)
		c.cost -= it.cost
	}
}

// clear empties the cache (after a write made its values stale).
func (c *lru[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.m)
	c.cost = 0
	c.epoch++
}
