package emulator

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/azcred/azcred/internal/clock"
)

// KubernetesIssuerOptions contains optional parameters for
// [NewKubernetesIssuer].
type KubernetesIssuerOptions struct {
	// Issuer is the issuer URL put in the tokens' "iss", as a cluster's
	// service-account issuer (an AKS OIDC issuer URL). Default:
	// "https://oidc.kubernetes.emulator.invalid/<random>/". Nothing is served
	// there: the emulator trusts the issuer through [FederatedCredential.Keys].
	Issuer string

	// Clock dates the tokens. Default: the system clock.
	Clock clock.Clock
}

// KubernetesIssuer is a fake Kubernetes service-account token issuer: it
// mints projected service-account tokens (RS256 JWTs) as a cluster with an
// OIDC issuer does, signed by a key of its own that [KubernetesIssuer.PublicKeys]
// and [KubernetesIssuer.JWKS] publish. It is safe for concurrent use and
// holds no goroutine or listener.
type KubernetesIssuer struct {
	issuer string
	key    *rsa.PrivateKey
	kid    string
	clk    clock.Clock
}

// ServiceAccountToken describes a token to mint with [KubernetesIssuer.Mint].
type ServiceAccountToken struct {
	// Namespace and Name name the service account; the token's "sub" is
	// "system:serviceaccount:<Namespace>:<Name>". Required.
	Namespace, Name string
	// Audiences is the token's "aud". Default: [DefaultFederatedAudience].
	Audiences []string
	// IssuedAt is the token's "iat" and "nbf". Default: the issuer's clock.
	IssuedAt time.Time
	// Lifetime is the time from IssuedAt to "exp". Default: one hour, the
	// kubelet's usual projected-token lifetime.
	Lifetime time.Duration
}

// NewKubernetesIssuer returns a KubernetesIssuer with a new 2048-bit RSA
// signing key. Pass nil to accept default options.
func NewKubernetesIssuer(opts *KubernetesIssuerOptions) (*KubernetesIssuer, error) {
	var o KubernetesIssuerOptions
	if opts != nil {
		o = *opts
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, fmt.Errorf("emulator: generating the Kubernetes issuer's key: %w", err)
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("emulator: naming the Kubernetes issuer's key: %w", err)
	}
	if o.Issuer == "" {
		o.Issuer = "https://oidc.kubernetes.emulator.invalid/" + newID() + "/"
	}
	return &KubernetesIssuer{issuer: o.Issuer, key: key, kid: kid, clk: clock.OrReal(o.Clock)}, nil
}

// NewKubernetesIssuerT is [NewKubernetesIssuer] for tests: it fails tb
// instead of returning an error.
func NewKubernetesIssuerT(tb testing.TB, opts *KubernetesIssuerOptions) *KubernetesIssuer {
	tb.Helper()
	k, err := NewKubernetesIssuer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// Issuer returns the issuer URL of the tokens ("iss").
func (k *KubernetesIssuer) Issuer() string { return k.issuer }

// Subject returns the "sub" of the tokens of a service account.
func (k *KubernetesIssuer) Subject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// PublicKeys returns the key that verifies the issuer's tokens, to put in
// [FederatedCredential.Keys].
func (k *KubernetesIssuer) PublicKeys() []crypto.PublicKey {
	return []crypto.PublicKey{&k.key.PublicKey}
}

// FederatedCredential returns the federated identity credential that makes
// an app trust the tokens of the service account namespace/name with the
// default audience.
func (k *KubernetesIssuer) FederatedCredential(namespace, name string) FederatedCredential {
	return FederatedCredential{
		Issuer:   k.issuer,
		Subject:  k.Subject(namespace, name),
		Audience: DefaultFederatedAudience,
		Keys:     k.PublicKeys(),
	}
}

// JWKS returns the issuer's JSON Web Key Set, as a cluster serves it at its
// jwks_uri.
func (k *KubernetesIssuer) JWKS() []byte {
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA",
		"use": "sig",
		"alg": "RS256",
		"kid": k.kid,
		"n":   base64.RawURLEncoding.EncodeToString(k.key.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.key.E)).Bytes()),
	}}})
	return b
}

// Mint returns a signed service-account token with the claims a kubelet's
// projected token carries: iss, sub, aud, iat, nbf, exp and the
// "kubernetes.io" claim naming the namespace and service account.
func (k *KubernetesIssuer) Mint(t ServiceAccountToken) (string, error) {
	if t.Namespace == "" || t.Name == "" {
		return "", errors.New("emulator: ServiceAccountToken needs a Namespace and a Name")
	}
	if len(t.Audiences) == 0 {
		t.Audiences = []string{DefaultFederatedAudience}
	}
	if t.IssuedAt.IsZero() {
		t.IssuedAt = k.clk.Now()
	}
	if t.Lifetime == 0 {
		t.Lifetime = time.Hour
	}
	return signRS256Header(k.key, map[string]any{"typ": "JWT", "alg": "RS256", "kid": k.kid}, map[string]any{
		"iss": k.issuer,
		"sub": k.Subject(t.Namespace, t.Name),
		"aud": t.Audiences,
		"iat": t.IssuedAt.Unix(),
		"nbf": t.IssuedAt.Unix(),
		"exp": t.IssuedAt.Add(t.Lifetime).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      t.Namespace,
			"serviceaccount": map[string]string{"name": t.Name, "uid": derivedID("sa", t.Namespace, t.Name)},
		},
	})
}

// ProjectedTokenFile writes a service-account token into a directory the way
// the kubelet's atomic writer updates a projected volume: each version goes
// into a new hidden directory, the "..data" symbolic link is swapped to it
// with a rename, and "token" is a symbolic link to "..data/token". Readers
// that open [ProjectedTokenFile.Path] always see a whole token. It is safe
// for concurrent use. On Windows, creating symbolic links needs the
// privilege to do so (or developer mode).
type ProjectedTokenFile struct {
	dir string

	mu      sync.Mutex
	version int
	current string // the directory "..data" points to
}

// NewProjectedTokenFile returns a ProjectedTokenFile that writes into dir,
// which must exist (a test's t.TempDir()).
func NewProjectedTokenFile(dir string) *ProjectedTokenFile {
	return &ProjectedTokenFile{dir: dir}
}

// Path returns the path a workload reads: "<dir>/token", the value of
// AZURE_FEDERATED_TOKEN_FILE.
func (p *ProjectedTokenFile) Path() string { return filepath.Join(p.dir, "token") }

// Write publishes token as the file's new content and removes the previous
// version's directory, as the kubelet does after a rotation.
func (p *ProjectedTokenFile) Write(token string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.version++
	name := fmt.Sprintf("..%s.%09d", time.Now().UTC().Format("2006_01_02_15_04_05"), p.version)
	if err := os.Mkdir(filepath.Join(p.dir, name), 0o755); err != nil {
		return fmt.Errorf("emulator: projected token: %w", err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, name, "token"), []byte(token), 0o644); err != nil {
		return fmt.Errorf("emulator: projected token: %w", err)
	}
	tmp := filepath.Join(p.dir, "..data_tmp")
	if err := os.Symlink(name, tmp); err != nil {
		return fmt.Errorf("emulator: projected token: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, "..data")); err != nil {
		return fmt.Errorf("emulator: projected token: %w", err)
	}
	if _, err := os.Lstat(p.Path()); errors.Is(err, os.ErrNotExist) {
		if err := os.Symlink(filepath.Join("..data", "token"), p.Path()); err != nil {
			return fmt.Errorf("emulator: projected token: %w", err)
		}
	}
	if p.current != "" {
		if err := os.RemoveAll(filepath.Join(p.dir, p.current)); err != nil {
			return fmt.Errorf("emulator: projected token: %w", err)
		}
	}
	p.current = name
	return nil
}
