// Package shared holds what the azidentity drop-in and its cache package
// both need and neither may export: the persistent token store behind the
// azidentity Cache type.
package shared

import "github.com/azcred/azcred/cache"

// Cache is the value behind azidentity.Cache. Its zero value keeps tokens in
// memory only; a Cache from the cache package carries the store that keeps
// them across processes. Copies share the store.
type Cache struct {
	store cache.Store
}

// NewCache returns a Cache that keeps tokens in s as well as in memory.
func NewCache(s cache.Store) Cache { return Cache{store: s} }

// Store returns c's persistent store, nil for memory only.
func Store(c Cache) cache.Store { return c.store }
