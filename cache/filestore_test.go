package cache

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// staticKeys is a KeyStore for tests: the same key for every name.
type staticKeys []byte

func (k staticKeys) Key(string) ([]byte, error) { return append([]byte(nil), k...), nil }

type failingKeys struct{}

func (failingKeys) Key(string) ([]byte, error) {
	return nil, fmt.Errorf("%w: keyctl: operation not permitted", ErrKeyStoreUnavailable)
}

var testKey = staticKeys(bytes.Repeat([]byte{7}, KeySize))

func newTestStore(t *testing.T, dir string, o *FileStoreOptions) *FileStore {
	t.Helper()
	if o == nil {
		o = &FileStoreOptions{}
	}
	o.Dir = dir
	if o.KeyStore == nil {
		o.KeyStore = testKey
	}
	s, err := NewFileStore("tokens", o)
	require.NoError(t, err)
	return s
}

func TestFileStoreRoundTripPermissionsAndEncryption(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "azcred")
	s := newTestStore(t, dir, nil)
	assert.True(t, s.Encrypted())
	ctx := context.Background()
	rt := EntryKey{Kind: KindRefreshToken, Partition: "app@https://login", Key: "oid.tid"}
	cae := rt
	cae.CAE = true
	require.NoError(t, s.Save(ctx, rt, Entry{Value: "rt-secret-plain"}))
	require.NoError(t, s.Save(ctx, cae, Entry{Value: "rt-secret-cae"}))
	e, ok, err := s.Load(ctx, rt)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "rt-secret-plain", e.Value)
	e, _, _ = s.Load(ctx, cae)
	assert.Equal(t, "rt-secret-cae", e.Value, "CAE and non-CAE entries are separate")

	expired := EntryKey{Kind: KindAccessToken, Partition: "p", Key: "k"}
	require.NoError(t, s.Save(ctx, expired, Entry{Value: "at", ExpiresOn: time.Now().Add(-time.Minute)}))
	_, ok, _ = s.Load(ctx, expired)
	assert.False(t, ok, "expired entries are dropped on write")

	require.NoError(t, s.Delete(ctx, cae))
	_, ok, _ = s.Load(ctx, cae)
	assert.False(t, ok)

	raw, err := os.ReadFile(s.Path())
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "rt-secret", "encrypted at rest")
	assert.True(t, bytes.HasPrefix(raw, magicSegments))
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(s.Path())
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		di, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	assert.Empty(t, left, "no temporary files left")
}

func TestFileStoreRefusesWithoutKeyStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := NewFileStore("tokens", &FileStoreOptions{Dir: dir, KeyStore: failingKeys{}})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrKeyStoreUnavailable)
	assert.Equal(t, "persistent token cache unavailable: the cache is encrypted at rest and its key store failed: "+
		"no key store is available: keyctl: operation not permitted. To keep tokens in an unencrypted file readable only by you "+
		"(permissions 0600), set AllowUnencrypted in FileStoreOptions; otherwise use the credential without a persistent cache", err.Error())

	var logs bytes.Buffer
	s, err := NewFileStore("tokens", &FileStoreOptions{Dir: dir, KeyStore: failingKeys{}, AllowUnencrypted: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	assert.False(t, s.Encrypted())
	assert.Contains(t, logs.String(), "unencrypted")
	require.NoError(t, s.Save(context.Background(), EntryKey{Kind: KindAccount, Key: "a"}, Entry{Value: "doc"}))
	raw, err := os.ReadFile(s.Path())
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(raw, magicSegments))

	for _, name := range []string{"", "..", "a/b", `a\b`} {
		_, err := NewFileStore(name, &FileStoreOptions{Dir: dir, KeyStore: testKey})
		assert.Error(t, err, name)
	}
}

func TestFileStoreSetsAsideUnreadableFile(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T, path string){
		"garbage": func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("not a cache"), 0o600))
		},
		"version 1 under another key (after a reboot)": func(t *testing.T, path string) {
			gcm, err := newGCM(bytes.Repeat([]byte{9}, KeySize))
			require.NoError(t, err)
			nonce := make([]byte, gcm.NonceSize())
			v1 := append(append(append([]byte{}, magicEncrypted...), nonce...), gcm.Seal(nil, nonce, []byte(`{"version":1,"entries":[]}`), magicEncrypted)...)
			require.NoError(t, os.WriteFile(path, v1, 0o600))
		},
		"own segment damaged": func(t *testing.T, path string) {
			own, err := NewFileStore("tokens", &FileStoreOptions{Dir: filepath.Dir(path), KeyStore: testKey})
			require.NoError(t, err)
			require.NoError(t, own.Save(context.Background(), EntryKey{Kind: KindAccount, Key: "old"}, Entry{Value: "x"}))
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			raw[len(raw)-1] ^= 1
			require.NoError(t, os.WriteFile(path, raw, 0o600))
		},
		"truncated segment": func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, append(append([]byte{}, magicSegments...), 1, 2, 3), 0o600))
		},
		"truncated": func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, magicEncrypted, 0o600))
		},
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var logs bytes.Buffer
			s := newTestStore(t, dir, &FileStoreOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			corrupt(t, s.Path())
			ctx := context.Background()
			_, ok, err := s.Load(ctx, EntryKey{Kind: KindAccount, Key: "old"})
			require.NoError(t, err, "an unreadable file is not fatal")
			assert.False(t, ok)
			k := EntryKey{Kind: KindRefreshToken, Key: "new"}
			require.NoError(t, s.Save(ctx, k, Entry{Value: "v"}))
			e, ok, err := s.Load(ctx, k)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, "v", e.Value)
			aside, _ := filepath.Glob(s.Path() + ".corrupt-*")
			assert.Len(t, aside, 1, "the old file is kept aside")
			assert.Contains(t, logs.String(), "set aside")
		})
	}
}

const (
	writerEnv = "AZCRED_FILESTORE_WRITER"
	writers   = 8
	writes    = 40
)

// TestFileStoreWriterProcess is one of the processes of
// TestFileStoreConcurrentProcesses; it does nothing in a normal run. It
// prints "ready", waits for its standard input to close (the start line
// every writer waits at), then saves its entries, reading the file without
// the lock after each save, and prints how many of those reads found that
// other processes had written since its previous read.
func TestFileStoreWriterProcess(t *testing.T) {
	spec := os.Getenv(writerEnv)
	if spec == "" {
		t.Skip("a helper process of TestFileStoreConcurrentProcesses")
	}
	var dir, id, keyHex string
	_, err := fmt.Sscan(spec, &dir, &id, &keyHex)
	require.NoError(t, err)
	key, err := hex.DecodeString(keyHex)
	require.NoError(t, err)
	s, err := NewFileStore("shared", &FileStoreOptions{Dir: dir, KeyStore: staticKeys(key)})
	require.NoError(t, err)
	fmt.Println("ready")
	_, err = io.Copy(io.Discard, os.Stdin)
	require.NoError(t, err)
	ctx := context.Background()
	others, interleaved := -1, 0
	for i := range writes {
		k := EntryKey{Kind: KindRefreshToken, Partition: "p" + id, Key: strconv.Itoa(i), CAE: i%2 == 0}
		require.NoError(t, s.Save(ctx, k, Entry{Value: id + "-" + strconv.Itoa(i)}))
		m, err := s.read()
		require.NoError(t, err, "the file always decrypts")
		mine := 0
		for k := range m {
			if k.Partition == "p"+id {
				mine++
			}
		}
		require.Equal(t, i+1, mine, "every save of this process is in the file")
		if n := len(m) - mine; others >= 0 && n != others {
			interleaved++
		}
		others = len(m) - mine
	}
	fmt.Println("interleaved", interleaved)
}

// TestFileStoreConcurrentProcesses runs 8 processes that save to one file
// at once, starting together: no process loses another's entries, no
// read without the lock sees a file that does not decrypt, no file is set
// aside, and the writes did interleave.
func TestFileStoreConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 processes")
	}
	t.Parallel()
	dir := t.TempDir()
	key := bytes.Repeat([]byte{3}, KeySize)
	exe, err := os.Executable()
	require.NoError(t, err)
	type writer struct {
		cmd    *exec.Cmd
		start  io.WriteCloser
		out    *bufio.Reader
		stderr bytes.Buffer
	}
	ws := make([]*writer, writers)
	for i := range ws {
		w := &writer{cmd: exec.Command(exe, "-test.run=^TestFileStoreWriterProcess$", "-test.count=1")}
		// A race-enabled child otherwise sleeps a second before exiting.
		w.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0",
			fmt.Sprintf("%s=%s %d %s", writerEnv, dir, i, hex.EncodeToString(key)))
		w.start, err = w.cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := w.cmd.StdoutPipe()
		require.NoError(t, err)
		w.out = bufio.NewReader(stdout)
		w.cmd.Stderr = &w.stderr
		require.NoError(t, w.cmd.Start())
		ws[i] = w
		t.Cleanup(func() { _ = w.cmd.Process.Kill(); _ = w.cmd.Wait() })
	}
	for i, w := range ws {
		if line, _ := w.out.ReadString('\n'); line != "ready\n" {
			rest, _ := io.ReadAll(w.out)
			_ = w.cmd.Wait() // the stderr buffer is complete only after Wait
			t.Fatalf("writer %d did not start: %s%s%s", i, line, rest, w.stderr.String())
		}
	}
	for _, w := range ws {
		require.NoError(t, w.start.Close())
	}
	interleaved := 0
	for i, w := range ws {
		rest, _ := io.ReadAll(w.out)
		err := w.cmd.Wait()
		require.NoError(t, err, "writer %d: %s%s", i, rest, w.stderr.String())
		var n int
		for _, line := range strings.Split(string(rest), "\n") {
			if _, err := fmt.Sscanf(line, "interleaved %d", &n); err == nil {
				break
			}
		}
		interleaved += n
	}
	t.Logf("%d reads of %d processes found other processes' writes since the previous read", interleaved, writers)
	assert.GreaterOrEqual(t, interleaved, writers, "the processes wrote at the same time")
	s, err := NewFileStore("shared", &FileStoreOptions{Dir: dir, KeyStore: staticKeys(key)})
	require.NoError(t, err)
	m, err := s.read()
	require.NoError(t, err)
	assert.Len(t, m, writers*writes, "every entry of every process is present")
	for w := range writers {
		for i := range writes {
			e, ok := m[EntryKey{Kind: KindRefreshToken, Partition: "p" + strconv.Itoa(w), Key: strconv.Itoa(i), CAE: i%2 == 0}]
			if !assert.True(t, ok, "writer %d entry %d", w, i) {
				return
			}
			assert.Equal(t, strconv.Itoa(w)+"-"+strconv.Itoa(i), e.Value)
		}
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*"))
	assert.Empty(t, aside, "no file was ever unreadable")
}

var _ = errors.Is
