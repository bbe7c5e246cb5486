package emulator

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// The emulator reads and writes JWTs with this small code of its own rather
// than a library the client side might also use: a test in which both ends
// share a parser proves little.

type jwt struct {
	header map[string]any
	claims map[string]any
	signed string // "<header>.<payload>", the signing input
	sig    []byte
}

func decodeSegment(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	return base64.RawURLEncoding.DecodeString(s)
}

func decodeJSONObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// parseJWT splits and decodes a compact JWS without verifying it.
func parseJWT(s string) (*jwt, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("a JWT has 3 dot-separated parts, this has %d", len(parts))
	}
	hb, err := decodeSegment(parts[0])
	if err != nil {
		return nil, errors.New("the header is not base64url")
	}
	cb, err := decodeSegment(parts[1])
	if err != nil {
		return nil, errors.New("the payload is not base64url")
	}
	sig, err := decodeSegment(parts[2])
	if err != nil {
		return nil, errors.New("the signature is not base64url")
	}
	t := &jwt{signed: parts[0] + "." + parts[1], sig: sig}
	if t.header, err = decodeJSONObject(hb); err != nil {
		return nil, errors.New("the header is not a JSON object")
	}
	if t.claims, err = decodeJSONObject(cb); err != nil {
		return nil, errors.New("the payload is not a JSON object")
	}
	return t, nil
}

func stringField(m map[string]any, name string) string {
	s, _ := m[name].(string)
	return s
}

// numberField reads a NumericDate or other number; ok is false when the
// field is absent or not a number.
func numberField(m map[string]any, name string) (int64, bool) {
	switch v := m[name].(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i, true
		}
		if f, err := v.Float64(); err == nil {
			return int64(f), true
		}
	case float64:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

// audiences reads "aud", a string or an array of strings.
func audiences(m map[string]any) []string {
	switch v := m["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// verify checks the signature with key under the header's alg. Only RS256,
// PS256 and ES256 are accepted.
func (t *jwt) verify(key crypto.PublicKey) error {
	alg := stringField(t.header, "alg")
	h := sha256.Sum256([]byte(t.signed))
	switch alg {
	case "RS256", "PS256":
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s needs an RSA key", alg)
		}
		if alg == "RS256" {
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], t.sig)
		}
		return rsa.VerifyPSS(pub, crypto.SHA256, h[:], t.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case "ES256":
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return errors.New("alg ES256 needs an ECDSA key")
		}
		if len(t.sig) != 64 {
			return errors.New("an ES256 signature is 64 bytes")
		}
		r := new(big.Int).SetBytes(t.sig[:32])
		s := new(big.Int).SetBytes(t.sig[32:])
		if !ecdsa.Verify(pub, h[:], r, s) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	case "":
		return errors.New("the header has no alg")
	default:
		return fmt.Errorf("alg %q is not accepted; use RS256, PS256 or ES256", alg)
	}
}

func supportedFederatedKey(k crypto.PublicKey) bool {
	switch k.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return true
	}
	return false
}

// signRS256 makes a compact JWS of claims signed with key.
func signRS256(key *rsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	return signRS256Header(key, map[string]any{"typ": "JWT", "alg": "RS256", "kid": kid, "x5t": kid}, claims)
}

// signRS256Header makes a compact JWS of claims with the given header (whose
// "alg" must be RS256) signed with key. Tokens of other issuers (Kubernetes,
// Azure DevOps) name their key by "kid" only.
func signRS256Header(key *rsa.PrivateKey, header, claims map[string]any) (string, error) {
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	h := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
