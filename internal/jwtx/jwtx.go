// Package jwtx holds the small JWT helpers both ends of azcred need:
// base64url, reading a token's header and claims without verifying it (to
// learn its expiry, tenant or user for display), and signing a JWT with an
// RSA crypto.Signer. It never puts a token or part of one in an error.
package jwtx

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Encode returns b in unpadded base64url, the encoding of JWT segments.
func Encode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Decode reads base64url with or without padding.
func Decode(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, errors.New("not valid base64url")
	}
	return b, nil
}

// ErrMalformed reports a string that is not a compact JWT.
var ErrMalformed = errors.New("not a JWT: expected three base64url segments separated by dots")

// DecodeHeader unmarshals the header of token into v without verifying the
// signature.
func DecodeHeader(token string, v any) error { return decodeSegment(token, 0, "header", v) }

// DecodeClaims unmarshals the claims of token into v without verifying the
// signature. Use it only to read a token azcred already trusts (one it just
// received over TLS) or to display one; never to authorize anything.
func DecodeClaims(token string, v any) error { return decodeSegment(token, 1, "claims", v) }

func decodeSegment(token string, i int, name string, v any) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ErrMalformed
	}
	b, err := Decode(parts[i])
	if err != nil {
		return fmt.Errorf("the JWT %s is %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("the JWT %s is not the expected JSON object", name)
	}
	return nil
}

// Signing algorithms Sign supports.
const (
	// PS256 is RSASSA-PSS with SHA-256, what Microsoft Entra ID expects of
	// client assertions.
	PS256 = "PS256"
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256, what AD FS expects.
	RS256 = "RS256"
)

// Sign returns the compact JWT of header and claims signed by key with alg
// (PS256 or RS256). It sets the header's "alg" and "typ"; header holds the
// other fields (for example "x5t#S256"). key must hold an RSA key; it may be
// an *rsa.PrivateKey or any crypto.Signer such as a hardware key.
func Sign(alg string, header map[string]any, claims any, key crypto.Signer) (string, error) {
	if key == nil {
		return "", errors.New("no signing key")
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return "", errors.New("the signing key must be an RSA key")
	}
	var opts crypto.SignerOpts
	switch alg {
	case PS256:
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	case RS256:
		opts = crypto.SHA256
	default:
		return "", fmt.Errorf("unsupported signing algorithm %q: use PS256 or RS256", alg)
	}
	h := make(map[string]any, len(header)+2)
	for k, v := range header {
		h[k] = v
	}
	h["alg"], h["typ"] = alg, "JWT"
	hb, err := json.Marshal(h)
	if err != nil {
		return "", errors.New("the JWT header cannot be encoded as JSON")
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", errors.New("the JWT claims cannot be encoded as JSON")
	}
	signed := Encode(hb) + "." + Encode(cb)
	digest := sha256.Sum256([]byte(signed))
	sig, err := key.Sign(rand.Reader, digest[:], opts)
	if err != nil {
		return "", fmt.Errorf("signing the JWT: %w", err)
	}
	return signed + "." + Encode(sig), nil
}
