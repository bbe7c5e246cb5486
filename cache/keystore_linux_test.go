//go:build linux

package cache

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKernelKeyring(t *testing.T) {
	t.Parallel()
	name := "test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ks := DefaultKeyStore()
	k1, err := ks.Key(name)
	if errors.Is(err, ErrKeyStoreUnavailable) {
		t.Skipf("the kernel keyring is blocked here (typical of container seccomp profiles): %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = removeKey(name) })
	assert.Len(t, k1, KeySize)
	k2, err := ks.Key(name)
	require.NoError(t, err)
	assert.Equal(t, k1, k2, "the same key comes back")
	assert.False(t, bytes.Equal(k1, make([]byte, KeySize)))

	s, err := NewFileStore(name, &FileStoreOptions{Dir: t.TempDir()})
	require.NoError(t, err)
	assert.True(t, s.Encrypted())
	k := EntryKey{Kind: KindRefreshToken, Key: "a"}
	require.NoError(t, s.Save(context.Background(), k, Entry{Value: "v"}))
	e, ok, err := s.Load(context.Background(), k)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "v", e.Value)
}
