/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"unsafe"
)

// Digest is the SHA-256 digest of a key's plaintext. It is what is stored
// instead of the key, hex-encoded.
type Digest [sha256.Size]byte

// ErrMalformedDigest is returned by ParseDigest for strings that are not 64
// lowercase hexadecimal characters.
var ErrMalformedDigest = errors.New("keys: malformed digest: must be 64 lowercase hexadecimal characters")

// DigestOf returns the SHA-256 digest of the bytes of plaintext. It does not
// allocate.
func DigestOf(plaintext string) Digest {
	// A []byte(plaintext) conversion would copy the key to the heap on every
	// call. sha256.Sum256 only reads its argument and does not retain it, so
	// it is safe to give it a read-only view of the string's bytes.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(plaintext), len(plaintext))) //nolint:gosec // G103: audited, read-only view, see above
}

// String returns the lowercase hexadecimal encoding of d.
func (d Digest) String() string {
	return hex.EncodeToString(d[:])
}

// ParseDigest parses the lowercase hexadecimal encoding of a digest, as
// returned by Digest.String. It returns ErrMalformedDigest if s is not
// exactly 64 lowercase hexadecimal characters.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != hex.EncodedLen(len(d)) {
		return Digest{}, ErrMalformedDigest
	}
	for i := range d {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return Digest{}, ErrMalformedDigest
		}
		d[i] = hi<<4 | lo
	}
	return d, nil
}

// fromHex returns the value of a lowercase hexadecimal digit.
func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
