// Package lru is a bounded map that drops the entry used least recently.
// The process-wide registries (managed-identity engines, pinned Service
// Fabric transports, shared confidential-client engines) are built on it.
package lru

import "container/list"

// Map holds at most a fixed number of entries; adding past it drops the
// entry looked up or added least recently. It is not safe for concurrent
// use: callers hold their own lock.
type Map[K comparable, V any] struct {
	max    int
	onDrop func(K, V)
	m      map[K]*list.Element
	order  list.List // of *entry[K, V]; front: used most recently
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a Map of at most limit entries (at least one). onDrop, when
// not nil, is called with each entry the bound drops or RemoveIf removes.
func New[K comparable, V any](limit int, onDrop func(K, V)) *Map[K, V] {
	return &Map[K, V]{max: max(limit, 1), onDrop: onDrop, m: map[K]*list.Element{}}
}

// Get returns the value under k and marks it used.
func (c *Map[K, V]) Get(k K) (V, bool) {
	el := c.m[k]
	if el == nil {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry[K, V]).val, true
}

// GetOrAdd returns the value under k, marking it used, or stores and
// returns the one create makes, dropping the least recently used entries
// past the bound.
func (c *Map[K, V]) GetOrAdd(k K, create func() V) V {
	if v, ok := c.Get(k); ok {
		return v
	}
	v := create()
	c.m[k] = c.order.PushFront(&entry[K, V]{key: k, val: v})
	for c.order.Len() > c.max {
		c.removeElement(c.order.Back())
	}
	return v
}

// RemoveIf removes the entry under k when match reports true for its
// value, and reports whether it did.
func (c *Map[K, V]) RemoveIf(k K, match func(V) bool) bool {
	el := c.m[k]
	if el == nil || !match(el.Value.(*entry[K, V]).val) {
		return false
	}
	c.removeElement(el)
	return true
}

// Contains reports whether k has an entry, without marking it used.
func (c *Map[K, V]) Contains(k K) bool { return c.m[k] != nil }

// Len is the number of entries.
func (c *Map[K, V]) Len() int { return c.order.Len() }

func (c *Map[K, V]) removeElement(el *list.Element) {
	e := el.Value.(*entry[K, V])
	c.order.Remove(el)
	delete(c.m, e.key)
	if c.onDrop != nil {
		c.onDrop(e.key, e.val)
	}
}
