package cache

import (
	"bytes"
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/azcred/azcred/internal/fsx"
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

	// LockTimeout bounds the wait for another process's lock on the file,
	// in NewFileStore and in each Save and Delete; when it passes they fail
	// (Load takes no lock). A user of the store for whom it is only a
	// speed-up sets a short one. Default: 60 s.
	LockTimeout time.Duration
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
//   - Each key store identity (each distinct key) keeps its entries in its
//     own segment of the file, named by a fingerprint of the key. A writer
//     rewrites its own segment and copies the others unread, so two
//     processes whose key stores differ (one in a user namespace, with
//     another kernel keyring) share the directory without wiping each
//     other's cache. A segment no writer has rewritten for 30 days (its key
//     is gone, as after a reboot on Linux) is dropped, and at most 8
//     segments are kept, the most recently written.
//   - The file is at most 16 MiB: a larger one is not read. A file that
//     cannot be read (corrupt, too large, not a regular file, or its own
//     segment does not decrypt) is renamed aside to <file>.corrupt-<time>
//     and replaced by an empty cache, with a warning in the log; it is never
//     fatal. At most 3 set-aside files are kept, none older than 7 days.
//   - No symbolic link is followed: the directory must be a real directory
//     owned by the user (on Unix), and the cache and lock files are opened
//     without following links (a link in the cache file's place is set
//     aside; one in the lock file's place is an error saying to remove it).
//
// A FileStore is safe for concurrent use.
type FileStore struct {
	path   string
	key    []byte // nil: unencrypted
	id     [segmentIDSize]byte
	logger *slog.Logger
	lockTO time.Duration
}

// The file starts with a magic of 4 bytes that tells how it is stored.
// Version 2 ("azc2") is a sequence of segments, one per key identity:
//
//	id      16 bytes  fingerprint of the key (all zero: unencrypted)
//	written  8 bytes  big-endian Unix seconds of the segment's last write
//	length   4 bytes  big-endian length of the payload
//	payload           encrypted: nonce || AES-256-GCM(JSON, aad "azc2"||id);
//	                  unencrypted: the JSON
//
// Version 1 files ("azc1" encrypted, "azc0" plain: one payload for the whole
// file) are read and rewritten as version 2.
var (
	magicSegments  = []byte("azc2")
	magicEncrypted = []byte("azc1")
	magicPlain     = []byte("azc0")
)

// Bounds of the file and of what it keeps.
const (
	maxFileSize     = 16 << 20
	maxSegments     = 8
	segmentMaxAge   = 30 * 24 * time.Hour
	maxSetAside     = 3
	setAsideMaxAge  = 7 * 24 * time.Hour
	segmentIDSize   = 16
	segmentHeadSize = segmentIDSize + 8 + 4
)

// segment is one key identity's part of the file, kept as stored.
type segment struct {
	id      [segmentIDSize]byte
	written time.Time
	payload []byte
}

// lockTimeout is the default bound of the wait for other processes' locks: generous, since each holder syncs a file to disk.
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
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("persistent token cache: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("persistent token cache: restricting %s to its owner: %w", dir, err)
	}
	s := &FileStore{path: filepath.Join(dir, name), logger: logger, lockTO: o.LockTimeout}
	if s.lockTO <= 0 {
		s.lockTO = lockTimeout
	}
	ks := o.KeyStore
	if ks == nil {
		ks = DefaultKeyStore()
	}
	// Creating the key under the file's lock keeps two processes from
	// racing to create different keys.
	ctx, cancel := context.WithTimeout(context.Background(), s.lockTO)
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
		s.id = keyID(key)
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

// String describes the store by its file and whether it is encrypted;
// never its key. A value receiver, so that a FileStore and a pointer to one
// print the same.
func (s FileStore) String() string {
	how := "unencrypted"
	if s.key != nil {
		how = "encrypted"
	}
	return "cache.FileStore(" + s.path + ", " + how + ")"
}

// GoString is String, so that %#v shows no key either.
func (s FileStore) GoString() string { return s.String() }

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
	ctx, cancel := context.WithTimeout(ctx, s.lockTO)
	defer cancel()
	unlock, err := lockFile(ctx, s.path+".lock")
	if err != nil {
		return fmt.Errorf("persistent token cache: locking %s: %w", s.path, err)
	}
	defer unlock()
	m, others, err := s.readAll()
	if err != nil {
		aside := s.path + ".corrupt-" + strconv.FormatInt(time.Now().UnixNano(), 10)
		if rerr := os.Rename(s.path, aside); rerr != nil {
			return fmt.Errorf("persistent token cache: setting aside the unreadable %s: %w", s.path, rerr)
		}
		s.logger.Warn("persistent token cache: the file could not be read and was set aside; the cache starts empty",
			slog.String("path", s.path), slog.String("setAside", aside), slog.String("reason", err.Error()))
		s.pruneSetAside()
		m, others = map[EntryKey]Entry{}, nil
	}
	change(m)
	now := time.Now()
	for k, e := range m {
		if !e.ExpiresOn.IsZero() && now.After(e.ExpiresOn) {
			delete(m, k)
		}
	}
	return s.write(m, others, now)
}

// pruneSetAside removes set-aside files beyond the newest maxSetAside and
// any older than setAsideMaxAge. Only regular files named
// <file>.corrupt-<digits> are touched.
func (s *FileStore) pruneSetAside() {
	dir, prefix := filepath.Dir(s.path), filepath.Base(s.path)+".corrupt-"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type aside struct {
		name string
		at   int64
	}
	var found []aside
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		at, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			continue
		}
		found = append(found, aside{e.Name(), at})
	}
	slices.SortFunc(found, func(a, b aside) int { return cmp.Compare(b.at, a.at) })
	cutoff := time.Now().Add(-setAsideMaxAge).UnixNano()
	for i, a := range found {
		if i >= maxSetAside || a.at < cutoff {
			_ = os.Remove(filepath.Join(dir, a.name))
		}
	}
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

// read returns this store's entries; a missing file is an empty cache.
func (s *FileStore) read() (map[EntryKey]Entry, error) {
	m, _, err := s.readAll()
	return m, err
}

// readAll returns this store's entries and the other key identities'
// segments, unread. A missing file is an empty cache.
func (s *FileStore) readAll() (map[EntryKey]Entry, []segment, error) {
	b, err := fsx.ReadRegular(s.path, maxFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return map[EntryKey]Entry{}, nil, nil
	}
	if errors.Is(err, fsx.ErrTooLarge) {
		return nil, nil, fmt.Errorf("the cache file is larger than %d bytes", maxFileSize)
	}
	if err != nil {
		return nil, nil, err
	}
	if !bytes.HasPrefix(b, magicSegments) {
		plain, err := s.openV1(b)
		if err != nil {
			return nil, nil, err
		}
		m, err := decodeEntries(plain)
		return m, nil, err
	}
	segs, err := parseSegments(b[len(magicSegments):])
	if err != nil {
		return nil, nil, err
	}
	m := map[EntryKey]Entry{}
	var others []segment
	for _, sg := range segs {
		if sg.id != s.id {
			others = append(others, sg)
			continue
		}
		plain, err := s.openSegment(sg)
		if err != nil {
			return nil, nil, err
		}
		if m, err = decodeEntries(plain); err != nil {
			return nil, nil, err
		}
	}
	return m, others, nil
}

// parseSegments splits a version 2 body into its segments.
func parseSegments(b []byte) ([]segment, error) {
	var segs []segment
	for len(b) > 0 {
		if len(b) < segmentHeadSize {
			return nil, errors.New("the cache file is truncated")
		}
		var sg segment
		copy(sg.id[:], b)
		secs := int64(binary.BigEndian.Uint64(b[segmentIDSize:]))
		n := binary.BigEndian.Uint32(b[segmentIDSize+8:])
		b = b[segmentHeadSize:]
		if uint64(n) > uint64(len(b)) {
			return nil, errors.New("the cache file is truncated")
		}
		sg.written, sg.payload = time.Unix(secs, 0), b[:n]
		b = b[n:]
		for _, o := range segs {
			if o.id == sg.id {
				return nil, errors.New("the cache file holds one key's segment twice")
			}
		}
		segs = append(segs, sg)
		if len(segs) > 4*maxSegments {
			return nil, errors.New("the cache file holds too many segments")
		}
	}
	return segs, nil
}

// openSegment returns the JSON of this store's own segment.
func (s *FileStore) openSegment(sg segment) ([]byte, error) {
	if s.key == nil {
		return sg.payload, nil
	}
	gcm, err := newGCM(s.key)
	if err != nil {
		return nil, err
	}
	if len(sg.payload) < gcm.NonceSize() {
		return nil, errors.New("the cache file's segment is truncated")
	}
	n := gcm.NonceSize()
	plain, err := gcm.Open(nil, sg.payload[:n], sg.payload[n:], segmentAAD(sg.id))
	if err != nil {
		return nil, errors.New("the cache file's segment of this key does not decrypt (a damaged file)")
	}
	return plain, nil
}

func segmentAAD(id [segmentIDSize]byte) []byte {
	return append(append([]byte{}, magicSegments...), id[:]...)
}

// keyID is the fingerprint that names a key's segment: it identifies the
// key without revealing it.
func keyID(key []byte) [segmentIDSize]byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("azcred file store segment id"))
	var id [segmentIDSize]byte
	copy(id[:], mac.Sum(nil))
	return id
}

func decodeEntries(plain []byte) (map[EntryKey]Entry, error) {
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

// openV1 returns the JSON of a version 1 file.
func (s *FileStore) openV1(b []byte) ([]byte, error) {
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

// write replaces the file atomically (temporary file, sync, rename) with
// this store's entries m and the segments of other keys, less those not
// written for segmentMaxAge and beyond maxSegments, oldest first, and less
// the oldest while the file would pass maxFileSize.
func (s *FileStore) write(m map[EntryKey]Entry, others []segment, now time.Time) error {
	doc := fileDoc{Version: 1, Entries: make([]fileEntry, 0, len(m))}
	for k, e := range m {
		doc.Entries = append(doc.Entries, fileEntry{Kind: k.Kind, Partition: k.Partition, Key: k.Key, CAE: k.CAE, Value: e.Value, ExpiresOn: e.ExpiresOn, RefreshOn: e.RefreshOn})
	}
	plain, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("persistent token cache: encoding: %w", err)
	}
	payload := plain
	if s.key != nil {
		gcm, err := newGCM(s.key)
		if err != nil {
			return err
		}
		nonce := make([]byte, gcm.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return fmt.Errorf("persistent token cache: generating a nonce: %w", err)
		}
		payload = gcm.Seal(nonce, nonce, plain, segmentAAD(s.id))
	}
	kept := make([]segment, 0, len(others))
	for _, o := range others {
		if now.Sub(o.written) <= segmentMaxAge {
			kept = append(kept, o)
		}
	}
	slices.SortStableFunc(kept, func(a, b segment) int { return b.written.Compare(a.written) })
	if len(kept) > maxSegments-1 {
		kept = kept[:maxSegments-1]
	}
	size := len(magicSegments) + segmentHeadSize + len(payload)
	if size > maxFileSize {
		return fmt.Errorf("persistent token cache: the entries would make the file larger than %d bytes; it keeps fewer tokens than this", maxFileSize)
	}
	for i, o := range kept {
		if size+segmentHeadSize+len(o.payload) > maxFileSize {
			kept = kept[:i]
			break
		}
		size += segmentHeadSize + len(o.payload)
	}
	out := make([]byte, 0, size)
	out = append(out, magicSegments...)
	out = appendSegment(out, segment{id: s.id, written: now, payload: payload})
	for _, o := range kept {
		out = appendSegment(out, o)
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

func appendSegment(out []byte, sg segment) []byte {
	out = append(out, sg.id[:]...)
	out = binary.BigEndian.AppendUint64(out, uint64(sg.written.Unix()))
	out = binary.BigEndian.AppendUint32(out, uint32(len(sg.payload)))
	return append(out, sg.payload...)
}

var _ Store = (*FileStore)(nil)
