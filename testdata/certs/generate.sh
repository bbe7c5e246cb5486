#!/usr/bin/env bash
# Regenerates the certificate fixtures of ParseCertificates' tests with
# OpenSSL 3. Every key here is a throwaway made for tests; the password of
# every encrypted file is "fixture-password".
set -euo pipefail
cd "$(dirname "$0")"
pw=fixture-password
days=36500

# A CA and an RSA leaf signed by it (the leaf is the signer, the CA the chain).
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days -subj "/CN=azcred test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=azcred test client" 2>/dev/null
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days $days 2>/dev/null

# PEM, key as PKCS#8 (OpenSSL 3's default), certificate first.
cat leaf.pem leaf.key > pem-pkcs8.pem
# PEM, key as PKCS#1 ("RSA PRIVATE KEY"), key first, with the CA as chain.
openssl rsa -in leaf.key -traditional -out leaf-pkcs1.key 2>/dev/null
cat leaf-pkcs1.key leaf.pem ca.pem > pem-pkcs1-chain.pem
# PEM, encrypted PKCS#8 (PBES2, PBKDF2 with HMAC-SHA256, AES-256-CBC).
openssl pkcs8 -topk8 -in leaf.key -v2 aes-256-cbc -v2prf hmacWithSHA256 -passout pass:$pw -out leaf-enc.key
cat leaf.pem leaf-enc.key > pem-encrypted.pem
# PEM, legacy encryption (Proc-Type: 4,ENCRYPTED): refused with a hint.
openssl rsa -in leaf.key -traditional -aes256 -passout pass:$pw -out leaf-legacy-enc.key 2>/dev/null
cat leaf.pem leaf-legacy-enc.key > pem-legacy-encrypted.pem

# PKCS#12, OpenSSL 3 defaults: PBES2/AES-256-CBC, SHA-256 MAC; with the CA.
openssl pkcs12 -export -inkey leaf.key -in leaf.pem -certfile ca.pem -passout pass:$pw -out modern.pfx
# PKCS#12, legacy: RC2-40 certificates, 3DES key, SHA-1 MAC.
openssl pkcs12 -export -legacy -inkey leaf.key -in leaf.pem -certfile ca.pem -passout pass:$pw -out legacy.pfx
# PKCS#12, legacy 3DES everywhere, no password.
openssl pkcs12 -export -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1 -inkey leaf.key -in leaf.pem -passout pass: -out nopassword.pfx

# An EC key and certificate: refused (RSA keys only).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -out ec.pem -days $days -subj "/CN=azcred test EC" 2>/dev/null
cat ec.pem ec.key > pem-ec.pem
# Two keys in one PEM: refused.
cat leaf.pem leaf.key ca.key > pem-two-keys.pem
# A certificate whose key is not in the file: refused.
cat ca.pem leaf.key > pem-key-mismatch.pem
# Only a certificate, no key: refused.
cp leaf.pem pem-no-key.pem

rm -f leaf.csr ca.srl leaf-pkcs1.key leaf-enc.key leaf-legacy-enc.key ec.key ec.pem
