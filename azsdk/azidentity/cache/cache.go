// Package cache provides persistent token caches for the credentials of
// [github.com/azcred/azcred/azsdk/azidentity], mirroring
// github.com/Azure/azure-sdk-for-go/sdk/azidentity/cache: call [New] and set
// the result as the Cache field of a credential's options.
//
// The cache is azcred's encrypted file store ([cache.NewFileStore] of
// github.com/azcred/azcred/cache): one file per name in the user's cache
// directory, encrypted with a key kept in the operating system's key store.
// Tokens of processes that share a name are shared.
package cache

import (
	"fmt"

	"github.com/azcred/azcred/azsdk/azidentity"
	"github.com/azcred/azcred/azsdk/azidentity/internal/shared"
	azcache "github.com/azcred/azcred/cache"
)

// Options contains optional parameters for New.
type Options struct {
	// Name distinguishes caches: credentials given caches of the same name
	// share tokens, across processes too. It is a file name, without path
	// separators. Default: "azidentity".
	Name string
}

// New returns a persistent cache. Pass nil to accept default options. It
// fails, saying why, when no key store works here to encrypt the cache
// (azcred never writes tokens to an unencrypted file unless asked to
// through its own cache package).
func New(opts *Options) (azidentity.Cache, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "azidentity"
	}
	s, err := azcache.NewFileStore(o.Name, nil)
	if err != nil {
		return azidentity.Cache{}, fmt.Errorf("persistent token caching is not available here: %w", err)
	}
	return shared.NewCache(s), nil
}
