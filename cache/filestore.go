package cache

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FileStoreOptions contains optional parameters for [NewFileStore].
type FileStoreOptions struct {
	// Dir is the directory of the cache file. Default: "azcred" in
	// [os.UserCacheDir] ($XDG_CACHE_HOME or ~/.cache on Linux). It is
	// created with permissions 0700.
	Dir string

	// AllowUnencrypted lets the store keep its file unencrypted (permissions
	// 0600, readable by the user and root) when no key store works here. It
	// is never used while a key store works. Default: false, NewFileStore
	// fails instead.
	AllowUnencrypted bool

	// KeyStore keeps the file's encryption key. Default: [DefaultKeyStore].
	KeyStore KeyStore

	// Logger receives the store's warnings (a corrupt file set aside, an
	// unencrypted file in use). Default: discard.
	Logger *slog.Logger
}

// FileStore is a [Store] in one file, shared safely by every process of the
// user that opens the same name:
//
//   - The file is encrypted with AES-256-GCM under a key kept outside it by
//     a [KeyStore]. The directory has permissions 0700 and the file 0600.
//   - Every change takes a cross-process lock (<file>.lock), reads the file,
//     applies the change to what it read and writes the result to a temporary
//     file that is synced and renamed over the old one: concurrent processes
//     never lose each other's entries and a reader never sees half a file.
//   - A file that cannot be read (corrupt, or encrypted with a key that is
//     gone, as after a reboot on Linux) is renamed aside to
//     <file>.corrupt-<time> and replaced by an empty cache, with a warning
//     in the log; it is never fatal.
//
// A FileStore is safe for concurrent use.
type FileStore struct {
	path   string
	key    []byte // nil: unencrypted
	logger *slog.Logger
}

// The file starts with a magic of 4 bytes that tells how it is stored.
var (
	magicEncrypted = []byte("azc1")
	magicPlain     = []byte("azc0")
)

// lockTimeout bounds the wait for other processes' locks: generous, since each holder syncs a file to disk.
const lockTimeout = 60 * time.Second

// NewFileStore opens (creating when needed) the file store name, a file
// name without path separators such as "azcred". Pass nil to accept default
// options. It fails, saying why and how to opt in to an unencrypted file,
// when no key store works and AllowUnencrypted is false.
func NewFileStore(name string, opts *FileStoreOptions) (*FileStore, error) {
	var o FileStoreOptions
	if opts != nil {
		o = *opts
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`+"\x00") {
		return nil, fmt.Errorf("persistent token cache: the name %q is not a plain file name; use a name such as \"azcred\"", name)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir := o.Dir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("persistent token cache: no user cache directory (%w); set FileStoreOptions.Dir", err)
		}
		dir = filepath.Join(base, "azcred")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("persistent token cache: creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("persistent token cache: restricting %s to its owner: %w", dir, err)
	}
	s := &FileStore{path: filepath.Join(dir, name), logger: logger}
	ks := o.KeyStore
	if ks == nil {
		ks = DefaultKeyStore()
	}
	// Creating the key under the file's lock keeps two processes from
	// racing to create different keys.
	ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
	defer cancel()
	unlock, err := lockFile(ctx, s.path+".lock")
	if err != nil {
		return nil, fmt.Errorf("persistent token cache: locking %s: %w", s.path, err)
	}
	key, kerr := ks.Key(name)
	unlock()
	switch {
	case kerr == nil && len(key) == KeySize:
		s.key = key
	case kerr == nil:
		return nil, fmt.Errorf("persistent token cache: the key store returned a %d-byte key; it must return %d bytes", len(key), KeySize)
	case o.AllowUnencrypted:
		logger.Warn("persistent token cache: no key store works here; keeping the cache unencrypted, readable only by this user (0600)",
			slog.String("path", s.path), slog.String("reason", kerr.Error()))
	default:
		return nil, fmt.Errorf("persistent token cache unavailable: the cache is encrypted at rest and its key store failed: %w. "+
			"To keep tokens in an unencrypted file readable only by you (permissions 0600), set AllowUnencrypted in FileStoreOptions; "+
			"otherwise use the credential without a persistent cache", kerr)
	}
	return s, nil
}

// Path returns the cache file's path.
func (s *FileStore) Path() string { return s.path }

// Encrypted reports whether the file is encrypted.
func (s *FileStore) Encrypted() bool { return s.key != nil }

// Load implements [Store].
func (s *FileStore) Load(_ context.Context, k EntryKey) (Entry, bool, error) {
	m, err := s.read()
	if err != nil {
		s.logger.Warn("persistent token cache: the file cannot be read; it will be set aside at the next write",
			slog.String("path", s.path), slog.String("reason", err.Error()))
		return Entry{}, false, nil
	}
	e, ok := m[k]
	return e, ok, nil
}

// Save implements [Store].
func (s *FileStore) Save(ctx context.Context, k EntryKey, e Entry) error {
	return s.update(ctx, func(m map[EntryKey]Entry) { m[k] = e })
}

// Delete implements [Store].
func (s *FileStore) Delete(ctx context.Context, k EntryKey) error {
	return s.update(ctx, func(m map[EntryKey]Entry) { delete(m, k) })
}

// update applies change to the file under the cross-process lock.
func (s *FileStore) update(ctx context.Context, change func(map[EntryKey]Entry)) error {
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	unlock, err := lockFile(ctx, s.path+".lock")
	if err != nil {
		return fmt.Errorf("persistent token cache: locking %s: %w", s.path, err)
	}
	defer unlock()
	m, err := s.read()
	if err != nil {
		aside := s.path + ".corrupt-" + strconv.FormatInt(time.Now().UnixNano(), 10)
		if rerr := os.Rename(s.path, aside); rerr != nil {
			return fmt.Errorf("persistent token cache: setting aside the unreadable %s: %w", s.path, rerr)
		}
		s.logger.Warn("persistent token cache: the file could not be read and was set aside; the cache starts empty",
			slog.String("path", s.path), slog.String("setAside", aside), slog.String("reason", err.Error()))
		m = map[EntryKey]Entry{}
	}
	change(m)
	now := time.Now()
	for k, e := range m {
		if !e.ExpiresOn.IsZero() && now.After(e.ExpiresOn) {
			delete(m, k)
		}
	}
	return s.write(m)
}

// fileEntry is an entry as stored.
type fileEntry struct {
	Kind      Kind      `json:"kind"`
	Partition string    `json:"partition"`
	Key       string    `json:"key"`
	CAE       bool      `json:"cae,omitempty"`
	Value     string    `json:"value"`
	ExpiresOn time.Time `json:"expiresOn,omitzero"`
	RefreshOn time.Time `json:"refreshOn,omitzero"`
}

type fileDoc struct {
	Version int         `json:"version"`
	Entries []fileEntry `json:"entries"`
}

// read returns the file's entries; a missing file is an empty cache.
func (s *FileStore) read() (map[EntryKey]Entry, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[EntryKey]Entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	plain, err := s.open(b)
	if err != nil {
		return nil, err
	}
	var doc fileDoc
	if err := json.Unmarshal(plain, &doc); err != nil || doc.Version != 1 {
		return nil, errors.New("the cache file's content is not a version 1 azcred cache")
	}
	m := make(map[EntryKey]Entry, len(doc.Entries))
	for _, e := range doc.Entries {
		m[EntryKey{Kind: e.Kind, Partition: e.Partition, Key: e.Key, CAE: e.CAE}] = Entry{Value: e.Value, ExpiresOn: e.ExpiresOn, RefreshOn: e.RefreshOn}
	}
	return m, nil
}

func (s *FileStore) open(b []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, magicEncrypted):
		if s.key == nil {
			return nil, errors.New("the cache file is encrypted and no key store is available")
		}
		gcm, err := newGCM(s.key)
		if err != nil {
			return nil, err
		}
		rest := b[len(magicEncrypted):]
		if len(rest) < gcm.NonceSize() {
			return nil, errors.New("the cache file is truncated")
		}
		plain, err := gcm.Open(nil, rest[:gcm.NonceSize()], rest[gcm.NonceSize():], magicEncrypted)
		if err != nil {
			return nil, errors.New("the cache file does not decrypt with the current key (a new key after a reboot, or a damaged file)")
		}
		return plain, nil
	case bytes.HasPrefix(b, magicPlain):
		if s.key != nil {
			return nil, errors.New("the cache file is unencrypted but this store encrypts")
		}
		return b[len(magicPlain):], nil
	}
	return nil, errors.New("the cache file is not an azcred cache")
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("the cache key is not an AES-256 key: %w", err)
	}
	return cipher.NewGCM(block)
}

// write replaces the file atomically: temporary file, sync, rename.
func (s *FileStore) write(m map[EntryKey]Entry) error {
	doc := fileDoc{Version: 1, Entries: make([]fileEntry, 0, len(m))}
	for k, e := range m {
		doc.Entries = append(doc.Entries, fileEntry{Kind: k.Kind, Partition: k.Partition, Key: k.Key, CAE: k.CAE, Value: e.Value, ExpiresOn: e.ExpiresOn, RefreshOn: e.RefreshOn})
	}
	plain, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("persistent token cache: encoding: %w", err)
	}
	var out []byte
	if s.key == nil {
		out = append(append([]byte{}, magicPlain...), plain...)
	} else {
		gcm, err := newGCM(s.key)
		if err != nil {
			return err
		}
		nonce := make([]byte, gcm.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return fmt.Errorf("persistent token cache: generating a nonce: %w", err)
		}
		out = append(append(append([]byte{}, magicEncrypted...), nonce...), gcm.Seal(nil, nonce, plain, magicEncrypted)...)
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("persistent token cache: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("persistent token cache: %w", err)
	}
	if _, err := tmp.Write(out); err != nil {
		return fmt.Errorf("persistent token cache: writing: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("persistent token cache: syncing: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("persistent token cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("persistent token cache: replacing %s: %w", s.path, err)
	}
	committed = true
	return nil
}

var _ Store = (*FileStore)(nil)
