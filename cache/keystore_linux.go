//go:build linux

package cache

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// DefaultKeyStore returns the platform's key store. On Linux it is the
// user's kernel keyring: the key is a "user" key described as
// "azcred:<name>" in the user's persistent keyring where the kernel has one
// (else the user keyring).
//
// The kernel keeps these keys in memory only: after a reboot the key, and so
// every cache file it encrypted, is gone, and the next sign-in starts a new
// cache. Container runtimes' default seccomp profiles often block the keyctl
// and add_key system calls; there Key fails with an error that wraps
// [ErrKeyStoreUnavailable].
func DefaultKeyStore() KeyStore { return kernelKeyring{} }

type kernelKeyring struct{}

const keyDescriptionPrefix = "azcred:"

// Key finds or creates the key.
func (kernelKeyring) Key(name string) ([]byte, error) {
	ring, err := keyring()
	if err != nil {
		return nil, err
	}
	desc := keyDescriptionPrefix + name
	id, err := unix.KeyctlSearch(ring, "user", desc, 0)
	if errors.Is(err, unix.ENOKEY) {
		key := make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generating the cache key: %w", err)
		}
		if id, err = unix.AddKey("user", desc, key, ring); err != nil {
			return nil, keyringError("add_key", err)
		}
	} else if err != nil {
		return nil, keyringError("keyctl search", err)
	}
	buf := make([]byte, KeySize+1)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil {
		return nil, keyringError("keyctl read", err)
	}
	if n != KeySize {
		return nil, fmt.Errorf("the kernel keyring holds a key %q of %d bytes, not %d: remove it with `keyctl purge user %s`", desc, n, KeySize, desc)
	}
	return buf[:KeySize], nil
}

// keyring returns the persistent keyring of the user (linked into the
// session keyring so it stays reachable), or the user keyring where the
// kernel has no persistent keyrings.
func keyring() (int, error) {
	id, err := unix.KeyctlInt(unix.KEYCTL_GET_PERSISTENT, -1, unix.KEY_SPEC_SESSION_KEYRING, 0, 0)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		return 0, keyringError("keyctl get_persistent", err)
	}
	id, err = unix.KeyctlGetKeyringID(unix.KEY_SPEC_USER_KEYRING, true)
	if err != nil {
		return 0, keyringError("keyctl get_keyring_id", err)
	}
	return id, nil
}

func keyringError(op string, err error) error {
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: the Linux kernel keyring refused %s (%w); container seccomp profiles often block keyctl", ErrKeyStoreUnavailable, op, err)
	}
	return fmt.Errorf("the Linux kernel keyring failed at %s: %w", op, err)
}

// removeKey unlinks the key named name from the keyring (tests).
func removeKey(name string) error {
	ring, err := keyring()
	if err != nil {
		return err
	}
	id, err := unix.KeyctlSearch(ring, "user", keyDescriptionPrefix+name, 0)
	if err != nil {
		return err
	}
	_, err = unix.KeyctlInt(unix.KEYCTL_UNLINK, id, ring, 0, 0)
	return err
}
