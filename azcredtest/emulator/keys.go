package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"time"

	"github.com/google/uuid"
)

type serverCertificates struct {
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	caPEM []byte
	leaf  tls.Certificate
}

// newServerCertificates makes a CA and a certificate for 127.0.0.1, ::1 and
// localhost signed by it. Both use ECDSA P-256, which is quick to generate.
func newServerCertificates() (serverCertificates, error) {
	var out serverCertificates
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return out, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "azcred emulator CA", Organization: []string{"azcred"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return out, err
	}
	if out.ca, err = x509.ParseCertificate(caDER); err != nil {
		return out, err
	}
	out.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	out.caKey = caKey
	out.leaf, err = out.issueLeaf("127.0.0.1", []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, []string{"localhost"})
	return out, err
}

// issueLeaf makes a server certificate for the given addresses and names,
// signed by the CA.
func (c serverCertificates) issueLeaf(commonName string, ips []net.IP, names []string) (tls.Certificate, error) {
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	leafTemplate := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"azcred"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(825 * 24 * time.Hour), // the longest lifetime macOS and browsers accept
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
		DNSNames:     names,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, c.ca, &leafKey.PublicKey, c.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func newSigningKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }

// keyID names a public key the way Entra's "kid" looks: base64url of the
// SHA-1 of the key's DER form.
func keyID(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha1.Sum(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

var idNamespace = uuid.MustParse("6f6b2f0e-3c55-4bd0-9a59-0f3b2d1c9e71")

// derivedID returns a stable UUID for the given parts, so that the same app or
// user gets the same object ID in every run.
func derivedID(parts ...string) string {
	name := ""
	for _, p := range parts {
		name += p + "\x00"
	}
	return uuid.NewSHA1(idNamespace, []byte(name)).String()
}

func newID() string { return uuid.NewString() }
