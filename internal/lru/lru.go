// Package lru is a least-recently-used cache bounded by a total cost
// (bytes, entries: whatever the caller counts), safe for concurrent use.
// The engines keep parsed metadata in it so that a daemon serving many
// images holds what is being used, not everything ever read.
package lru

import (
	"container/list"
	"sync"
)

// Cache maps keys to values. Values are shared with callers and must be
// treated as read-only.
type Cache[K comparable, V any] struct {
	mu   sync.Mutex
	max  int
	cost int
	ll   *list.List // front: most recently used
	m    map[K]*list.Element
	// epoch counts clears: a value loaded before a clear (while a write
	// was changing what it was read from) is not stored after it.
	epoch uint64
}

type item[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

// New returns a cache holding values whose costs add up to at most
// maxCost (one value larger than that is still kept, alone).
func New[K comparable, V any](maxCost int) *Cache[K, V] {
	return &Cache[K, V]{max: maxCost, ll: list.New(), m: map[K]*list.Element{}}
}

// Get returns the value of k and marks it used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*item[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Stamp is the epoch to pass to PutAt for a value about to be loaded.
func (c *Cache[K, V]) Stamp() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// PutAt stores v unless the cache was cleared since Stamp returned ep.
func (c *Cache[K, V]) PutAt(ep uint64, k K, v V, cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == ep {
		c.put(k, v, cost)
	}
}

// Put stores v for k at the given cost, evicting the least recently
// used values beyond the bound.
func (c *Cache[K, V]) Put(k K, v V, cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(k, v, cost)
}

func (c *Cache[K, V]) put(k K, v V, cost int) {
	if e, ok := c.m[k]; ok {
		it := e.Value.(*item[K, V])
		c.cost += cost - it.cost
		it.val, it.cost = v, cost
		c.ll.MoveToFront(e)
	} else {
		c.m[k] = c.ll.PushFront(&item[K, V]{key: k, val: v, cost: cost})
		c.cost += cost
	}
	for c.cost > c.max && c.ll.Len() > 1 {
		c.removeElement(c.ll.Back())
	}
}

func (c *Cache[K, V]) removeElement(e *list.Element) {
	it := e.Value.(*item[K, V])
	c.ll.Remove(e)
	delete(c.m, it.key)
	c.cost -= it.cost
}

// Remove drops k.
func (c *Cache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.removeElement(e)
	}
}

// RemoveIf drops every key for which fn is true.
func (c *Cache[K, V]) RemoveIf(fn func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.ll.Front(); e != nil; {
		next := e.Next()
		if fn(e.Value.(*item[K, V]).key) {
			c.removeElement(e)
		}
		e = next
	}
}

// Clear empties the cache and starts a new epoch.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.m)
	c.cost = 0
	c.epoch++
}

// Len is the number of values held.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// Cost is the total cost of the values held.
func (c *Cache[K, V]) Cost() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cost
}
