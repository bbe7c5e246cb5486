//go:build !linux

package cache

import (
	"fmt"
	"runtime"
)

// DefaultKeyStore returns the platform's key store. Only Linux has one for
// now (the kernel keyring); here Key fails with an error that wraps
// [ErrKeyStoreUnavailable].
func DefaultKeyStore() KeyStore { return noKeyStore{} }

type noKeyStore struct{}

func (noKeyStore) Key(string) ([]byte, error) {
	return nil, fmt.Errorf("%w: azcred has no key store for %s yet (the Keychain on macOS and DPAPI on Windows are planned)", ErrKeyStoreUnavailable, runtime.GOOS)
}
