package azcred

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/pbkdf2"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"

	"software.sslmate.com/src/go-pkcs12"
)

// ParseCertificates reads a certificate and its RSA private key, for
// [NewClientCertificateCredential]. data is either PEM or PKCS#12 (a .pfx or
// .p12 file):
//   - PEM: CERTIFICATE blocks and exactly one key, as PKCS#1 ("RSA PRIVATE
//     KEY"), PKCS#8 ("PRIVATE KEY") or password-encrypted PKCS#8 ("ENCRYPTED
//     PRIVATE KEY", PBES2 with AES or 3DES, what `openssl pkcs8 -topk8`
//     writes); blocks may come in any order.
//   - PKCS#12: modern files (PBES2 with AES-256 and a SHA-256 MAC, OpenSSL 3's
//     default) and legacy ones (3DES, RC2, SHA-1 MAC).
//
// Every password-based key derivation (the PKCS#12 MAC, the PKCS#12 and
// PBES2 encryption schemes, encrypted PKCS#8) may ask for at most 10,000,000
// iterations; a file asking for more is refused before any derivation, so a
// hostile file cannot pin a CPU.
//
// password may be nil for unencrypted data. The certificate whose public key
// matches the private key comes first in the result (it is the signer); the
// others follow in file order (the chain sent with SendCertificateChain).
// Keys other than RSA are refused. Errors say what was wrong with the data and
// never contain the password or the key.
func ParseCertificates(data, password []byte) ([]*x509.Certificate, crypto.PrivateKey, error) {
	var (
		certs []*x509.Certificate
		key   crypto.PrivateKey
		err   error
	)
	if bytes.Contains(data, []byte("-----BEGIN")) {
		certs, key, err = parsePEM(data, password)
	} else {
		certs, key, err = parsePKCS12(data, password)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ParseCertificates: %w", err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("ParseCertificates: the private key is %s; Entra ID client certificates need an RSA key: create one with `openssl req -x509 -newkey rsa:2048 ...`", keyKind(key))
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("ParseCertificates: the data holds a private key but no certificate; add the certificate (PEM \"CERTIFICATE\" block) to the file")
	}
	ordered, err := signerFirst(certs, &rsaKey.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("ParseCertificates: %w", err)
	}
	return ordered, rsaKey, nil
}

// signerFirst returns certs with the certificate of pub first and the others
// after it in their order, or an error when none is pub's.
func signerFirst(certs []*x509.Certificate, pub *rsa.PublicKey) ([]*x509.Certificate, error) {
	for i, c := range certs {
		if p, ok := c.PublicKey.(*rsa.PublicKey); ok && p.Equal(pub) {
			ordered := make([]*x509.Certificate, 0, len(certs))
			ordered = append(ordered, c)
			ordered = append(ordered, certs[:i]...)
			return append(ordered, certs[i+1:]...), nil
		}
	}
	return nil, fmt.Errorf("none of the %d certificates matches the private key; put the certificate issued for this key in the file", len(certs))
}

func keyKind(key crypto.PrivateKey) string {
	switch key.(type) {
	case *ecdsa.PrivateKey:
		return "an ECDSA key"
	case ed25519.PrivateKey, *ed25519.PrivateKey:
		return "an Ed25519 key"
	case nil:
		return "missing"
	default:
		return fmt.Sprintf("a %T", key)
	}
}

func parsePEM(data, password []byte) ([]*x509.Certificate, crypto.PrivateKey, error) {
	var (
		certs []*x509.Certificate
		key   crypto.PrivateKey
		keys  int
	)
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var (
			k   crypto.PrivateKey
			err error
		)
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("certificate %d of the PEM data is not a valid X.509 certificate: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
			continue
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["Proc-Type"]; encrypted {
				return nil, nil, errors.New("the key uses legacy PEM encryption (Proc-Type: 4,ENCRYPTED), which is insecure and not supported; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc` or export a PKCS#12 file")
			}
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if len(password) == 0 {
				return nil, nil, errors.New("the private key is encrypted; give its password")
			}
			var der []byte
			if der, err = decryptPKCS8(block.Bytes, password); err == nil {
				k, err = x509.ParsePKCS8PrivateKey(der)
				if err != nil {
					err = errWrongPassword
				}
			}
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			if errors.Is(err, errWrongPassword) {
				return nil, nil, err
			}
			return nil, nil, fmt.Errorf("the PEM %q block is not a valid key: %w", block.Type, err)
		}
		keys++
		key = k
	}
	switch {
	case len(certs) == 0 && keys == 0:
		return nil, nil, errors.New("the data is PEM but holds no certificate and no private key")
	case keys == 0:
		return nil, nil, errors.New("the PEM data holds no private key; add the certificate's key (a \"PRIVATE KEY\" block) to the file")
	case keys > 1:
		return nil, nil, fmt.Errorf("the PEM data holds %d private keys; keep only the key of the client certificate", keys)
	}
	return certs, key, nil
}

var errWrongPassword = errors.New("the password is wrong: the data could not be decrypted with it")

func parsePKCS12(data, password []byte) ([]*x509.Certificate, crypto.PrivateKey, error) {
	if len(data) == 0 {
		return nil, nil, errors.New("the data is empty; give the contents of a PEM or PKCS#12 (.pfx) file")
	}
	if err := checkPKCS12Work(data); err != nil {
		return nil, nil, err
	}
	key, cert, chain, err := pkcs12.DecodeChain(data, string(password))
	if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
		return nil, nil, errWrongPassword
	}
	if err != nil {
		var notImpl pkcs12.NotImplementedError
		if errors.As(err, &notImpl) {
			return nil, nil, fmt.Errorf("the PKCS#12 data uses a format that is not supported (%s); re-export it with OpenSSL 3's defaults", notImpl.Error())
		}
		return nil, nil, errors.New("the data is neither PEM nor a valid PKCS#12 (.pfx) file")
	}
	return append([]*x509.Certificate{cert}, chain...), key, nil
}

// Encrypted PKCS#8 (RFC 5958, PBES2 of RFC 8018).

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

type pbes2Params struct {
	KeyDerivation pkix.AlgorithmIdentifier
	Encryption    pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

// decryptPKCS8 decrypts an EncryptedPrivateKeyInfo protected with PBES2
// (PBKDF2 and AES-CBC or 3DES-CBC). A wrong password shows as bad padding
// and returns errWrongPassword.
func decryptPKCS8(der, password []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, errors.New("the encrypted private key is not valid PKCS#8")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("the private key is encrypted with %v, which is not supported; re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return nil, errors.New("the encrypted private key has invalid PBES2 parameters")
	}
	if !params.KeyDerivation.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("the private key's key derivation %v is not supported; re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`", params.KeyDerivation.Algorithm)
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(params.KeyDerivation.Parameters.FullBytes, &kdf); err != nil {
		return nil, errors.New("the encrypted private key has invalid PBKDF2 parameters")
	}
	if kdf.Iterations < 1 || kdf.Iterations > maxKDFIterations {
		return nil, fmt.Errorf("the encrypted private key asks for %d PBKDF2 iterations; between 1 and %d are accepted", kdf.Iterations, maxKDFIterations)
	}
	var prf func() hash.Hash
	switch alg := kdf.PRF.Algorithm; {
	case len(alg) == 0 || alg.Equal(oidHMACSHA1):
		prf = sha1.New
	case alg.Equal(oidHMACSHA224):
		prf = sha256.New224
	case alg.Equal(oidHMACSHA256):
		prf = sha256.New
	case alg.Equal(oidHMACSHA384):
		prf = sha512.New384
	case alg.Equal(oidHMACSHA512):
		prf = sha512.New
	default:
		return nil, fmt.Errorf("the private key's PBKDF2 function %v is not supported", alg)
	}
	var (
		keyLen  int
		newBloc func([]byte) (cipher.Block, error)
	)
	switch alg := params.Encryption.Algorithm; {
	case alg.Equal(oidAES128CBC):
		keyLen, newBloc = 16, aes.NewCipher
	case alg.Equal(oidAES192CBC):
		keyLen, newBloc = 24, aes.NewCipher
	case alg.Equal(oidAES256CBC):
		keyLen, newBloc = 32, aes.NewCipher
	case alg.Equal(oidDESEDE3CBC):
		keyLen, newBloc = 24, des.NewTripleDESCipher
	default:
		return nil, fmt.Errorf("the private key's cipher %v is not supported; re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`", alg)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, errors.New("the encrypted private key's PBKDF2 key length does not match its cipher")
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.Encryption.Parameters.FullBytes, &iv); err != nil {
		return nil, errors.New("the encrypted private key has an invalid cipher IV")
	}
	k, err := pbkdf2.Key(prf, string(password), kdf.Salt, kdf.Iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("deriving the key from the password: %w", err)
	}
	block, err := newBloc(k)
	if err != nil {
		return nil, fmt.Errorf("the private key's cipher: %w", err)
	}
	bs := block.BlockSize()
	if len(iv) != bs || len(info.Data) == 0 || len(info.Data)%bs != 0 {
		return nil, errors.New("the encrypted private key's data or IV has the wrong length")
	}
	plain := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.Data)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > bs {
		return nil, errWrongPassword
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, errWrongPassword
		}
	}
	return plain[:len(plain)-pad], nil
}
