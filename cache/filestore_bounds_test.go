package cache

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFileStoreCapsFileSize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var logs bytes.Buffer
	s := newTestStore(t, dir, &FileStoreOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// A well-formed version 1 file, encrypted with the store's key, one
	// entry of 17 MiB: readable, but not worth reading.
	doc, err := json.Marshal(fileDoc{Version: 1, Entries: []fileEntry{{Kind: KindAccount, Key: "huge", Value: strings.Repeat("x", 17<<20)}}})
	require.NoError(t, err)
	gcm, err := newGCM(testKey)
	require.NoError(t, err)
	nonce := make([]byte, gcm.NonceSize())
	v1 := append(append(append([]byte{}, magicEncrypted...), nonce...), gcm.Seal(nil, nonce, doc, magicEncrypted)...)
	require.NoError(t, os.WriteFile(s.Path(), v1, 0o600))

	ctx := context.Background()
	_, ok, err := s.Load(ctx, EntryKey{Kind: KindAccount, Key: "huge"})
	require.NoError(t, err)
	assert.False(t, ok, "a file over the cap is not read")
	assert.Contains(t, logs.String(), "larger than 16777216 bytes")
	require.NoError(t, s.Save(ctx, EntryKey{Kind: KindAccount, Key: "small"}, Entry{Value: "v"}))
	aside, _ := filepath.Glob(s.Path() + ".corrupt-*")
	assert.Len(t, aside, 1, "the oversized file is set aside")

	// Entries that would make the file pass the cap are refused.
	err = s.Save(ctx, EntryKey{Kind: KindAccount, Key: "huge"}, Entry{Value: strings.Repeat("y", 17<<20)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than 16777216 bytes")
	e, ok, _ := s.Load(ctx, EntryKey{Kind: KindAccount, Key: "small"})
	assert.True(t, ok, "the file is unchanged")
	assert.Equal(t, "v", e.Value)
}

func TestFileStorePrunesSetAsideFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newTestStore(t, dir, nil)
	old := s.Path() + ".corrupt-" + strconv.FormatInt(time.Now().Add(-8*24*time.Hour).UnixNano(), 10)
	require.NoError(t, os.WriteFile(old, []byte("old"), 0o600))
	unrelated := filepath.Join(dir, "tokens.corrupt-notatime")
	require.NoError(t, os.WriteFile(unrelated, []byte("keep"), 0o600))
	ctx := context.Background()
	for i := range 10 {
		require.NoError(t, os.WriteFile(s.Path(), []byte("garbage "+strconv.Itoa(i)), 0o600))
		require.NoError(t, s.Save(ctx, EntryKey{Kind: KindAccount, Key: "k"}, Entry{Value: "v"}))
	}
	aside, _ := filepath.Glob(s.Path() + ".corrupt-[0-9]*")
	assert.Len(t, aside, maxSetAside, "only the newest set-aside files are kept")
	assert.NoFileExists(t, old, "a set-aside file older than 7 days is removed")
	assert.FileExists(t, unrelated, "files not named by the store are left alone")
	newest, err := os.ReadFile(aside[len(aside)-1])
	require.NoError(t, err)
	assert.Equal(t, "garbage 9", string(newest))
}

func TestFileStoreFollowsNoSymlink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		base := t.TempDir()
		real := filepath.Join(base, "real")
		require.NoError(t, os.Mkdir(real, 0o700))
		link := filepath.Join(base, "link")
		require.NoError(t, os.Symlink(real, link))
		_, err := NewFileStore("tokens", &FileStoreOptions{Dir: link, KeyStore: testKey})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "is a symbolic link")
		entries, _ := os.ReadDir(real)
		assert.Empty(t, entries, "nothing was created through the link")
	})
	t.Run("lock file", func(t *testing.T) {
		t.Parallel()
		dir, outside := t.TempDir(), t.TempDir()
		target := filepath.Join(outside, "created-through-link")
		require.NoError(t, os.Symlink(target, filepath.Join(dir, "tokens.lock")))
		_, err := NewFileStore("tokens", &FileStoreOptions{Dir: dir, KeyStore: testKey})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "symbolic link")
		assert.NoFileExists(t, target, "the lock was not created through the link")
	})
	t.Run("cache file", func(t *testing.T) {
		t.Parallel()
		dir, outside := t.TempDir(), t.TempDir()
		elsewhere := newTestStore(t, outside, nil)
		k := EntryKey{Kind: KindRefreshToken, Key: "planted"}
		require.NoError(t, elsewhere.Save(ctx, k, Entry{Value: "planted-token"}))
		before, err := os.ReadFile(elsewhere.Path())
		require.NoError(t, err)
		s := newTestStore(t, dir, nil)
		require.NoError(t, os.Symlink(elsewhere.Path(), s.Path()))
		_, ok, err := s.Load(ctx, k)
		require.NoError(t, err)
		assert.False(t, ok, "entries are not read through a link")
		require.NoError(t, s.Save(ctx, EntryKey{Kind: KindAccount, Key: "mine"}, Entry{Value: "v"}))
		after, err := os.ReadFile(elsewhere.Path())
		require.NoError(t, err)
		assert.Equal(t, before, after, "the link's target is untouched")
		fi, err := os.Lstat(s.Path())
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "the link was set aside and replaced by a real file")
	})
}

func TestFileStoreKeyStoresShareADirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyA, keyB := staticKeys(bytes.Repeat([]byte{1}, KeySize)), staticKeys(bytes.Repeat([]byte{2}, KeySize))
	a := newTestStore(t, dir, &FileStoreOptions{KeyStore: keyA})
	b := newTestStore(t, dir, &FileStoreOptions{KeyStore: keyB})
	ctx := context.Background()
	ka, kb := EntryKey{Kind: KindRefreshToken, Key: "a"}, EntryKey{Kind: KindRefreshToken, Key: "b"}
	for i := range 5 {
		require.NoError(t, a.Save(ctx, ka, Entry{Value: "a" + strconv.Itoa(i)}))
		require.NoError(t, b.Save(ctx, kb, Entry{Value: "b" + strconv.Itoa(i)}))
	}
	ea, ok, _ := a.Load(ctx, ka)
	require.True(t, ok, "A's entry survives B's writes")
	assert.Equal(t, "a4", ea.Value)
	eb, ok, _ := b.Load(ctx, kb)
	require.True(t, ok, "B's entry survives A's writes")
	assert.Equal(t, "b4", eb.Value)
	_, ok, _ = a.Load(ctx, kb)
	assert.False(t, ok, "A cannot read B's entries")
	aside, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*"))
	assert.Empty(t, aside, "neither store set the other's file aside")

	// Segments are bounded: ten more keys write; the file keeps the eight
	// written most recently.
	for i := range 10 {
		s := newTestStore(t, dir, &FileStoreOptions{KeyStore: staticKeys(bytes.Repeat([]byte{byte(10 + i)}, KeySize))})
		require.NoError(t, s.Save(ctx, EntryKey{Kind: KindAccount, Key: "k"}, Entry{Value: strconv.Itoa(i)}))
	}
	raw, err := os.ReadFile(a.Path())
	require.NoError(t, err)
	segs, err := parseSegments(raw[len(magicSegments):])
	require.NoError(t, err)
	assert.Len(t, segs, maxSegments)

	// A segment nobody rewrote for 30 days is dropped at the next write.
	_, others, err := a.readAll()
	require.NoError(t, err)
	stale := others[0]
	stale.written = time.Now().Add(-31 * 24 * time.Hour)
	require.NoError(t, a.write(map[EntryKey]Entry{ka: {Value: "a"}}, append(others[1:], stale), time.Now()))
	require.NoError(t, a.Save(ctx, ka, Entry{Value: "a5"}))
	_, others, err = a.readAll()
	require.NoError(t, err)
	for _, o := range others {
		assert.NotEqual(t, stale.id, o.id, "the stale segment is gone")
	}
}

// TestFileStoreProcessesWithDifferentKeys runs writer processes whose key
// stores differ, as a process in a user namespace and one outside it do:
// each keeps every entry it wrote.
func TestFileStoreProcessesWithDifferentKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := [][]byte{bytes.Repeat([]byte{4}, KeySize), bytes.Repeat([]byte{5}, KeySize)}
	exe, err := os.Executable()
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	outs := make([][]byte, len(keys))
	for w, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(exe, "-test.run=^TestFileStoreWriterProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", writerEnv, dir, w, hex.EncodeToString(key)))
			outs[w], errs[w] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for w, key := range keys {
		require.NoError(t, errs[w], "writer %d: %s", w, outs[w])
		s, err := NewFileStore("shared", &FileStoreOptions{Dir: dir, KeyStore: staticKeys(key)})
		require.NoError(t, err)
		m, err := s.read()
		require.NoError(t, err)
		assert.Len(t, m, writes, "writer %d kept every entry", w)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*"))
	assert.Empty(t, aside, "no writer set the other's file aside")
}
