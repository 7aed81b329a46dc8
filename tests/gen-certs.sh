#!/bin/sh
# SPDX-License-Identifier: MIT
# gen-certs.sh DIR - makes the TLS test certificates in DIR (created if
# missing). Run by `make check` before the TLS suites; nothing it makes is
# committed, private keys included.
#
#   ca.pem / ca.key            a test CA ("eddy test CA")
#   server.pem / server.key    foo.example.com (CN and SAN DNS), signed by the CA
#   bar.pem / bar.key          bar.example.com, signed by the CA (SNI tests)
#   expired.pem / expired.key  foo.example.com, signed by the CA, valid only in 2020
#   self.pem / self.key        foo.example.com, self-signed
#   client.pem / client.key    "eddy test client" (clientAuth), signed by the CA
#   localhost.pem / .key       "localhost" (SAN DNS:localhost, IP:127.0.0.1,
#                              IP:::1), signed by the CA: for clients that
#                              verify the URL's host (examples/http-get)
#
# EC P-256 keys: they are quick to make and every peer we test with speaks
# ECDSA. Dates are explicit (openssl ca -startdate/-enddate) so the expired
# certificate does not depend on how a given openssl treats negative -days.
set -eu

dir=${1:?usage: gen-certs.sh DIR}
openssl=${OPENSSL:-openssl}
mkdir -p "$dir"
cd "$dir"

newkey() { "$openssl" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# The CA: a self-signed certificate with CA:TRUE.
newkey ca.key
"$openssl" req -x509 -new -key ca.key -out ca.pem -days 3650 -subj "/CN=eddy test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"

# A throw-away `openssl ca` setup: it is the one tool that takes explicit
# validity dates in every OpenSSL 3 release.
rm -rf ca.db && mkdir ca.db
: > ca.db/index.txt
echo 1000 > ca.db/serial
cat > ca.cnf <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = ca.db
database = ca.db/index.txt
serial = ca.db/serial
new_certs_dir = ca.db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
[ server_ext ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:\${ENV::EDDY_SAN}
[ local_ext ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF

# sign NAME CN EXT START END: NAME.key + NAME.pem signed by the CA.
sign() {
  newkey "$1.key"
  "$openssl" req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  EDDY_SAN=$2 "$openssl" ca -batch -notext -config ca.cnf -extensions "$3" \
    -startdate "$4" -enddate "$5" -in "$1.csr" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr"
}

export EDDY_SAN=unused
sign server foo.example.com server_ext 20240101000000Z 20491231235959Z
sign bar bar.example.com server_ext 20240101000000Z 20491231235959Z
sign expired foo.example.com server_ext 20200101000000Z 20200102000000Z
sign client "eddy test client" client_ext 20240101000000Z 20491231235959Z
sign localhost localhost local_ext 20240101000000Z 20491231235959Z

# A self-signed certificate for the right name: rejected only because no
# one trusts it.
newkey self.key
"$openssl" req -x509 -new -key self.key -out self.pem -days 3650 -subj "/CN=foo.example.com" \
  -addext "subjectAltName=DNS:foo.example.com"

rm -rf ca.db ca.cnf
