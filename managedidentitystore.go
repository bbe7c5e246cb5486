package azcred

import (
	"errors"
	"reflect"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/msi"
)

// useStore keeps the Cache option of a user-assigned identity; the
// system-assigned identity never shares its tokens beyond the process.
func (c *ManagedIdentityCredential) useStore(store cache.Store, id msi.ID) error {
	if store == nil || id.Kind == msi.None {
		return nil
	}
	if !reflect.ValueOf(store).Comparable() {
		return errors.New(credNameManagedIdentity + ": Cache must be a comparable value, such as a pointer to a store; pass &store")
	}
	c.store = store
	return nil
}

// storedFetch puts the credential's store, when it has one, in front of
// fetch for resource. The entry's name holds the identity's kind and ID
// and the resource: the same user-assigned identity gets the same token on
// every host, so the endpoint is not part of it.
func (c *ManagedIdentityCredential) storedFetch(resource string, fetch cache.FetchFunc) cache.FetchFunc {
	if c.store == nil {
		return fetch
	}
	id := c.client.ID()
	key := cache.EntryKey{Kind: cache.KindAccessToken, Partition: "managedidentity " + id.Kind.String() + "=" + id.Value, Key: resource}
	return cache.WithStore(fetch, cache.StoreOptions{
		Store:  c.store,
		Key:    func(cache.Request) cache.EntryKey { return key },
		Name:   credNameManagedIdentity,
		Clock:  c.clock,
		Logger: c.logger,
	})
}
