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
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"unsafe"
)

const (
	// RandomLength is the number of random base62 characters in a key.
	RandomLength = 30

	// ChecksumLength is the number of base62 characters encoding the
	// CRC-32 checksum at the end of a key.
	ChecksumLength = 6

	// MaxPrefixLength is the maximum length of a key prefix.
	MaxPrefixLength = 8

	// MaxKeyLength is the maximum length of a key string.
	MaxKeyLength = MaxPrefixLength + 1 + RandomLength + ChecksumLength

	// Regexp is a regular expression (RE2 syntax, as accepted by package
	// regexp) matching strings that look like keys. It is intended for
	// secret scanners: it checks the shape of a key but not its checksum,
	// so a match should be confirmed with CheckFormat. Every valid key
	// matches it.
	Regexp = `\b[a-z][a-z0-9]{1,7}_[0-9A-Za-z]{36}\b`
)

const (
	// minPrefixLength is the minimum length of a key prefix.
	minPrefixLength = 2
	// bodyLength is the length of the part of a key after the separator.
	bodyLength = RandomLength + ChecksumLength
	// idRandomLength is the number of random characters included in a key ID.
	idRandomLength = 4
	// separator separates the prefix from the body of a key.
	separator = '_'
	// redactionMark is appended to the key ID when a Key is formatted.
	redactionMark = "…"
	// rejectionThreshold is the largest multiple of 62 that fits in a byte
	// (4*62 = 248). Random bytes at or above it are discarded so that the
	// remaining ones, reduced modulo 62, are uniformly distributed.
	rejectionThreshold = 256 - 256%62
)

// base62Alphabet maps digit values to characters.
const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// invalidDigit marks bytes that are not base62 digits in base62Values.
const invalidDigit = 0xff

// base62Values maps characters to digit values, or invalidDigit.
var base62Values = func() (t [256]byte) {
	for i := range t {
		t[i] = invalidDigit
	}
	for i := range len(base62Alphabet) {
		t[base62Alphabet[i]] = byte(i)
	}
	return t
}()

var (
	// ErrMalformed is returned (possibly wrapped) when a string does not
	// have the structure of a key: wrong length, invalid prefix, missing
	// separator or characters outside the base62 alphabet.
	ErrMalformed = errors.New("keys: malformed key")

	// ErrChecksum is returned when a string has the structure of a key but
	// its checksum does not match, which usually means it was mistyped,
	// truncated and padded, or made up.
	ErrChecksum = errors.New("keys: key checksum mismatch")
)

// malformedError is a detailed error that wraps ErrMalformed. Values are
// allocated once, so returning one costs nothing on the hot path, and they
// never include any part of the rejected input.
type malformedError struct {
	msg string
}

func (e *malformedError) Error() string { return e.msg }
func (e *malformedError) Unwrap() error { return ErrMalformed }

var (
	errEmpty         = &malformedError{"keys: malformed key: empty"}
	errTooLong       = &malformedError{"keys: malformed key: too long"}
	errNoSeparator   = &malformedError{"keys: malformed key: missing separator"}
	errPrefix        = &malformedError{"keys: malformed key: invalid prefix"}
	errBodyLength    = &malformedError{"keys: malformed key: wrong length"}
	errBodyCharacter = &malformedError{"keys: malformed key: invalid character"}
	errInvalidPrefix = &malformedError{"keys: invalid prefix: must match [a-z][a-z0-9]{1,7}"}
)

// errRandomSource is returned by GenerateFrom when its reader does not
// behave like a uniform random source.
var errRandomSource = errors.New("keys: random source returned too many out-of-range bytes")

// Key is a parsed, well-formed API key.
//
// Key never reveals the secret when formatted: String, GoString, Format and
// LogValue only show the key ID followed by an ellipsis, so a Key passed to
// a logger by mistake does not leak. The plaintext is only available from
// Plaintext. Because it is held behind a pointer, reflection-based printing
// of a struct with an unexported Key field shows an address, not the key.
//
// The zero Key is not a valid key; all its methods return empty values.
// Keys should not be compared with ==; compare their Digests instead.
type Key struct {
	id        string  // prefix + "_" + first idRandomLength random chars; not secret
	plaintext *string // the whole key
}

// Prefix returns the prefix of the key, for example "iot".
func (k Key) Prefix() string {
	if k.id == "" {
		return ""
	}
	return k.id[:len(k.id)-1-idRandomLength]
}

// ID returns the non-secret key ID: the prefix, the separator and the first
// four random characters, for example "iot_7Hq2".
func (k Key) ID() string {
	return k.id
}

// Plaintext returns the secret key string. It is the only way to obtain the
// secret from a Key; callers must take care not to log or persist it.
func (k Key) Plaintext() string {
	if k.plaintext == nil {
		return ""
	}
	return *k.plaintext
}

// Digest returns the SHA-256 digest of the key, which is what is stored.
func (k Key) Digest() Digest {
	return DigestOf(k.Plaintext())
}

// String returns a redacted form of the key: its ID followed by an
// ellipsis, for example "iot_7Hq2…". It implements fmt.Stringer.
func (k Key) String() string {
	if k.id == "" {
		return ""
	}
	return k.id + redactionMark
}

// GoString returns a redacted Go-syntax representation of the key. It
// implements fmt.GoStringer.
func (k Key) GoString() string {
	return "keys.Key{ID:" + strconv.Quote(k.id) + "}"
}

// Format implements fmt.Formatter so that every verb and flag combination
// prints the redacted form of the key; %#v prints GoString.
func (k Key) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			_, _ = io.WriteString(f, k.GoString())
			return
		}
		fallthrough
	case 's', 'q', 'x', 'X':
		_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), k.String())
	default:
		_, _ = fmt.Fprintf(f, "%%!%c(keys.Key=%s)", verb, k.String())
	}
}

// LogValue implements slog.LogValuer, logging the redacted form of the key.
func (k Key) LogValue() slog.Value {
	return slog.StringValue(k.String())
}

// ValidPrefix reports whether prefix is a valid key prefix, that is whether
// it matches [a-z][a-z0-9]{1,7}.
func ValidPrefix(prefix string) bool {
	if len(prefix) < minPrefixLength || len(prefix) > MaxPrefixLength {
		return false
	}
	for i := range len(prefix) {
		c := prefix[i]
		lower, digit := 'a' <= c && c <= 'z', '0' <= c && c <= '9'
		if !lower && (i == 0 || !digit) {
			return false
		}
	}
	return true
}

// CheckFormat reports whether s is a well-formed key: valid prefix,
// separator, body length and alphabet, and matching checksum. It returns nil
// for a well-formed key, an error wrapping ErrMalformed for a structural
// problem, or ErrChecksum. It does not allocate, so it can be used to reject
// bad input cheaply before hashing. Errors never include any part of s.
func CheckFormat(s string) error {
	_, err := check(s)
	return err
}

// Parse parses and validates a key string as CheckFormat does, and returns
// the parsed Key.
func Parse(s string) (Key, error) {
	sep, err := check(s)
	if err != nil {
		return Key{}, err
	}
	return newKey(s, sep), nil
}

// Generate returns a new random key with the given prefix, using
// crypto/rand as the source of randomness. It returns an error wrapping
// ErrMalformed if the prefix is not valid.
func Generate(prefix string) (Key, error) {
	return GenerateFrom(rand.Reader, prefix)
}

// maxRandomBytes bounds the number of bytes GenerateFrom reads, so that a
// broken reader cannot make it loop forever. With a uniform source, needing
// more than this is practically impossible.
const maxRandomBytes = 1024

// GenerateFrom is like Generate but reads randomness from r. It is meant for
// tests; r must be a cryptographically secure source for real keys.
//
// Each random character is drawn from one byte of r without modulo bias:
// bytes of 248 (4*62) or more are discarded and the others are reduced
// modulo 62. GenerateFrom fails if r returns an error, or returns so many
// discarded bytes that it cannot be a uniform source.
func GenerateFrom(r io.Reader, prefix string) (Key, error) {
	if !ValidPrefix(prefix) {
		return Key{}, errInvalidPrefix
	}

	var buf [MaxKeyLength]byte
	n := copy(buf[:], prefix)
	buf[n] = separator
	random := buf[n+1 : n+1+RandomLength]

	var src [64]byte
	filled, read := 0, 0
	for filled < RandomLength {
		if read >= maxRandomBytes {
			return Key{}, errRandomSource
		}
		if _, err := io.ReadFull(r, src[:]); err != nil {
			return Key{}, fmt.Errorf("keys: reading random bytes: %w", err)
		}
		read += len(src)
		for _, b := range src {
			if b >= rejectionThreshold {
				continue
			}
			random[filled] = base62Alphabet[b%62]
			filled++
			if filled == RandomLength {
				break
			}
		}
	}
	clear(src[:])

	end := n + 1 + RandomLength
	encodeChecksum(buf[end:end+ChecksumLength], crc32.ChecksumIEEE(buf[:end]))
	s := string(buf[:end+ChecksumLength])
	clear(buf[:])
	return newKey(s, n), nil
}

// newKey returns a Key for the well-formed key s whose separator is at
// index sep.
func newKey(s string, sep int) Key {
	return Key{
		// Copy the ID so that it does not share memory with the secret.
		id:        strings.Clone(s[:sep+1+idRandomLength]),
		plaintext: &s,
	}
}

// check validates s and returns the index of its separator. It must not
// allocate.
func check(s string) (int, error) {
	switch {
	case len(s) == 0:
		return 0, errEmpty
	case len(s) > MaxKeyLength:
		return 0, errTooLong
	}

	// The prefix cannot contain the separator, so the first one ends it.
	sep := strings.IndexByte(s, separator)
	if sep < 0 {
		return 0, errNoSeparator
	}
	if !ValidPrefix(s[:sep]) {
		return 0, errPrefix
	}

	body := s[sep+1:]
	if len(body) != bodyLength {
		return 0, errBodyLength
	}
	var sum uint64
	for i := range len(body) {
		v := base62Values[body[i]]
		if v == invalidDigit {
			return 0, errBodyCharacter
		}
		if i >= RandomLength {
			sum = sum*62 + uint64(v)
		}
	}
	// The encoding is canonical: 6 base62 digits can represent values up to
	// 62^6-1 > 2^32-1, and only the exact CRC value is accepted.
	if sum != uint64(checksum(s[:sep+1+RandomLength])) {
		return 0, ErrChecksum
	}
	return sep, nil
}

// checksum returns the CRC-32 (IEEE) checksum of s. It is on every
// verification, so it hands the string's own bytes to crc32 (which only
// reads them and goes eight bytes a step) instead of copying them into a
// []byte or going a byte at a time.
func checksum(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s))) //nolint:gosec // G103: a read-only view of s, which crc32 does not keep
}

// encodeChecksum writes sum into dst as base62 digits, most significant
// first, left-padded with '0'. dst must be ChecksumLength bytes long.
func encodeChecksum(dst []byte, sum uint32) {
	v := uint64(sum)
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = base62Alphabet[v%62]
		v /= 62
	}
}
