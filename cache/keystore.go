package cache

import "errors"

// KeySize is the size in bytes of the key a [KeyStore] returns (AES-256).
const KeySize = 32

// KeyStore keeps the key that encrypts a [FileStore]'s file, outside the
// file. [DefaultKeyStore] is the platform's; tests and programs with their
// own secret storage may supply another.
type KeyStore interface {
	// Key returns the KeySize-byte key named name, creating and storing a
	// random one when there is none.
	Key(name string) ([]byte, error)
}

// ErrKeyStoreUnavailable is wrapped by the errors of a key store that
// cannot work here (the platform has none, or the system blocks it).
var ErrKeyStoreUnavailable = errors.New("no key store is available")
