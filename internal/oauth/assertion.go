package oauth

import (
	"crypto"
	"crypto/sha1" // AD FS names certificates by SHA-1 thumbprint (x5t); nothing is signed with SHA-1
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/jwtx"
)

// AssertionLifetime is how long a client assertion built by BuildAssertion is
// valid.
const AssertionLifetime = 10 * time.Minute

// AssertionParams are the inputs of BuildAssertion.
type AssertionParams struct {
	// ClientID is the application (client) ID: the assertion's iss and sub.
	ClientID string
	// Audience is the token endpoint the assertion is sent to: its aud.
	Audience string
	// Key signs the assertion; it must be the RSA key of Cert. An
	// *rsa.PrivateKey or any crypto.Signer (a hardware key) will do.
	Key crypto.Signer
	// Cert is the certificate registered on the app.
	Cert *x509.Certificate
	// Chain holds the certificates after Cert in its chain, sent in x5c
	// (leaf first) when SendChain is set.
	Chain []*x509.Certificate
	// SendChain adds the x5c header, for subject name/issuer
	// authentication.
	SendChain bool
	// ADFS signs for AD FS: RS256 with an x5t (SHA-1) thumbprint instead of
	// Entra's PS256 with x5t#S256.
	ADFS bool
	// Clock dates the assertion; nil is the system clock.
	Clock clock.Clock
}

// BuildAssertion returns a client assertion JWT for a certificate
// credential: header {alg, typ, x5t#S256 | x5t, [x5c]}, claims aud, iss,
// sub, jti (a fresh UUID), nbf (now) and exp (now + AssertionLifetime).
// Thumbprints are base64url, as RFC 7515 defines x5t and x5t#S256; x5c holds
// standard base64 DER.
func BuildAssertion(p AssertionParams) (string, error) {
	switch {
	case p.ClientID == "":
		return "", errors.New("a client ID is required to build a client assertion")
	case p.Audience == "":
		return "", errors.New("the token endpoint (audience) is required to build a client assertion")
	case p.Cert == nil:
		return "", errors.New("a certificate is required to build a client assertion")
	case p.Key == nil:
		return "", errors.New("a private key is required to build a client assertion")
	}
	pub, ok := p.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(p.Cert.PublicKey) {
		return "", errors.New("the private key does not belong to the certificate: give the key that was issued with it")
	}
	header := map[string]any{}
	alg := jwtx.PS256
	if p.ADFS {
		alg = jwtx.RS256
		sum := sha1.Sum(p.Cert.Raw)
		header["x5t"] = jwtx.Encode(sum[:])
	} else {
		sum := sha256.Sum256(p.Cert.Raw)
		header["x5t#S256"] = jwtx.Encode(sum[:])
	}
	if p.SendChain {
		x5c := []string{base64.StdEncoding.EncodeToString(p.Cert.Raw)}
		for _, c := range p.Chain {
			if c != nil && !c.Equal(p.Cert) {
				x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
			}
		}
		header["x5c"] = x5c
	}
	now := clock.OrReal(p.Clock).Now()
	claims := map[string]any{
		"aud": p.Audience,
		"iss": p.ClientID,
		"sub": p.ClientID,
		"jti": uuid.NewString(),
		"nbf": now.Unix(),
		"exp": now.Add(AssertionLifetime).Unix(),
	}
	return jwtx.Sign(alg, header, claims, p.Key)
}
