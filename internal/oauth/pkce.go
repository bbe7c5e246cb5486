package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// PKCE is a Proof Key for Code Exchange pair (RFC 7636, method S256): the
// verifier stays with the client, the challenge goes in the authorization
// request.
type PKCE struct {
	// Verifier is 32 random bytes in unpadded base64url (43 characters).
	Verifier string
	// Challenge is base64url(SHA-256(Verifier)).
	Challenge string
}

// ChallengeMethod is the PKCE method azcred uses.
const ChallengeMethod = "S256"

// NewPKCE returns a fresh verifier and its S256 challenge.
func NewPKCE() (PKCE, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return PKCE{}, fmt.Errorf("generating the PKCE verifier: %w", err)
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	return PKCE{Verifier: v, Challenge: S256Challenge(v)}, nil
}

// S256Challenge returns the S256 code challenge of verifier.
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// RandomState returns an unguessable value for the authorization request's
// "state" parameter: 16 random bytes in unpadded base64url.
func RandomState() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating the state parameter: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
