package azcred

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fixturePassword = "fixture-password"

func readCert(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "certs", name))
	require.NoError(t, err)
	return b
}

func TestParseCertificatesFormats(t *testing.T) {
	t.Parallel()
	leaf := mustParseCert(t, readCert(t, "leaf.pem"))
	ca := mustParseCert(t, readCert(t, "ca.pem"))
	for _, tc := range []struct {
		file      string
		password  string
		wantChain bool
	}{
		{"pem-pkcs8.pem", "", false},
		{"pem-pkcs1-chain.pem", "", true},
		{"pem-encrypted.pem", fixturePassword, false},
		{"pem-pkcs8.pem", "ignored-for-unencrypted", false},
		{"modern.pfx", fixturePassword, true},
		{"legacy.pfx", fixturePassword, true},
		{"nopassword.pfx", "", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			certs, key, err := ParseCertificates(readCert(t, tc.file), []byte(tc.password))
			require.NoError(t, err)
			rk, ok := key.(*rsa.PrivateKey)
			require.True(t, ok, "RSA key")
			require.NotEmpty(t, certs)
			assert.True(t, certs[0].Equal(leaf), "the signer comes first")
			assert.True(t, rk.PublicKey.Equal(certs[0].PublicKey), "the key matches the signer")
			if tc.wantChain {
				require.Len(t, certs, 2)
				assert.True(t, certs[1].Equal(ca), "the chain follows")
			} else {
				assert.Len(t, certs, 1)
			}
		})
	}
}

func TestParseCertificatesRefusals(t *testing.T) {
	t.Parallel()
	ecPEM := readCert(t, "pem-ec.pem")
	for _, tc := range []struct {
		name     string
		data     []byte
		password string
		want     string
	}{
		{"PEM with the wrong password", readCert(t, "pem-encrypted.pem"), "N0t-The-Pa55", "password is wrong"},
		{"PEM encrypted without password", readCert(t, "pem-encrypted.pem"), "", "give its password"},
		{"PFX with the wrong password", readCert(t, "modern.pfx"), "N0t-The-Pa55", "password is wrong"},
		{"legacy PFX with the wrong password", readCert(t, "legacy.pfx"), "N0t-The-Pa55", "password is wrong"},
		{"PFX without its password", readCert(t, "modern.pfx"), "", "password is wrong"},
		{"EC key", ecPEM, "", "ECDSA key"},
		{"EC key in PKCS#8", ecPKCS8(t), "", "ECDSA key"},
		{"two keys", readCert(t, "pem-two-keys.pem"), "", "2 private keys"},
		{"key without its certificate", readCert(t, "pem-key-mismatch.pem"), "", "matches the private key"},
		{"certificate without key", readCert(t, "pem-no-key.pem"), "", "no private key"},
		{"key without any certificate", readCert(t, "leaf.key"), "", "no certificate"},
		{"legacy PEM encryption", readCert(t, "pem-legacy-encrypted.pem"), fixturePassword, "legacy PEM encryption"},
		{"garbage", []byte("this is not a certificate"), "", "neither PEM nor a valid PKCS#12"},
		{"empty", nil, "", "empty"},
		{"PEM of something else", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}), "", "no certificate and no private key"},
		{"corrupt certificate block", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), "", "not a valid X.509 certificate"},
		{"corrupt key block", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "", "not a valid key"},
		{"corrupt encrypted key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "pw", "not valid PKCS#8"},
		{"truncated PFX", readCert(t, "modern.pfx")[:200], fixturePassword, "PKCS#12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			certs, key, err := ParseCertificates(tc.data, []byte(tc.password))
			require.Error(t, err)
			assert.Nil(t, certs)
			assert.Nil(t, key)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "ParseCertificates: "), err.Error())
			if tc.password != "" {
				assert.NotContains(t, err.Error(), tc.password)
			}
			assert.NotContains(t, err.Error(), "PRIVATE KEY-----")
		})
	}
}

func TestDecryptPKCS8RefusesAbsurdIterations(t *testing.T) {
	t.Parallel()
	encrypted := func(iterations int) []byte {
		kdf, err := asn1.Marshal(pbkdf2Params{Salt: []byte("12345678"), Iterations: iterations})
		require.NoError(t, err)
		iv, err := asn1.Marshal(make([]byte, 16))
		require.NoError(t, err)
		params, err := asn1.Marshal(pbes2Params{
			KeyDerivation: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
			Encryption:    pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: iv}},
		})
		require.NoError(t, err)
		der, err := asn1.Marshal(encryptedPrivateKeyInfo{
			Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}},
			Data:      make([]byte, 32),
		})
		require.NoError(t, err)
		return der
	}
	for _, n := range []int{0, -1, maxKDFIterations + 1, 1 << 30} {
		_, err := decryptPKCS8(encrypted(n), []byte("pw"))
		require.Error(t, err, n)
		assert.Contains(t, err.Error(), "PBKDF2 iterations", n)
	}
	_, err := decryptPKCS8(encrypted(1), []byte("pw"))
	assert.ErrorIs(t, err, errWrongPassword, "a sane structure with random data reads as a wrong password")
}

func FuzzParseCertificates(f *testing.F) {
	for _, name := range []string{"pem-pkcs8.pem", "pem-encrypted.pem", "modern.pfx", "legacy.pfx"} {
		b, err := os.ReadFile(filepath.Join("testdata", "certs", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte(fixturePassword))
	}
	f.Fuzz(func(t *testing.T, data, password []byte) {
		certs, key, err := ParseCertificates(data, password)
		if err == nil {
			if len(certs) == 0 || key == nil {
				t.Fatal("success without a certificate and a key")
			}
			if !key.(*rsa.PrivateKey).PublicKey.Equal(certs[0].PublicKey) {
				t.Fatal("the first certificate does not match the key")
			}
		}
	})
}

func mustParseCert(t testing.TB, pemData []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(pemData)
	require.NotNil(t, b)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

func ecPKCS8(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: bigOne()}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
}

func bigOne() *big.Int { return big.NewInt(1) }
