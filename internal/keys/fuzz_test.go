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
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// referenceRegexp is the full-string form of Regexp. A string is a valid
// key if and only if it matches it and its checksum is right.
var referenceRegexp = regexp.MustCompile(`^(?:` + Regexp + `)$`)

// scanRegexp is Regexp as a secret scanner would use it.
var scanRegexp = regexp.MustCompile(Regexp)

// knownErrors are all the errors Parse may return. They are fixed values, so
// an error can never carry any part of the input.
var knownErrors = []error{
	errEmpty, errTooLong, errNoSeparator, errPrefix, errBodyLength, errBodyCharacter, ErrChecksum,
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{knownKey, paddedKey, longKey} {
		f.Add(s)
	}
	for range 3 {
		k, err := Generate(testPrefix)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(k.Plaintext())
	}
	for _, tt := range malformedTests() {
		f.Add(tt.input)
	}

	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)

		if got := CheckFormat(s); got != err {
			t.Fatalf("CheckFormat(%q) = %v, but Parse returned %v", s, got, err)
		}

		// Independent reference: the regular expression for the structure,
		// hash/crc32 and a separate base62 encoder for the checksum.
		wellFormed := referenceRegexp.MatchString(s)
		valid := false
		if wellFormed {
			sep := strings.IndexByte(s, '_')
			valid = testKey(s[:sep], s[sep+1:sep+1+RandomLength]) == s
		}

		if err != nil {
			found := false
			for _, e := range knownErrors {
				found = found || err == e
			}
			if !found {
				t.Fatalf("Parse(%q) returned unexpected error value %#v", s, err)
			}
			if errors.Is(err, ErrMalformed) == errors.Is(err, ErrChecksum) {
				t.Fatalf("Parse(%q) error %v must be exactly one of ErrMalformed and ErrChecksum", s, err)
			}
			if valid {
				t.Fatalf("Parse(%q) error %v, but the reference accepts it", s, err)
			}
			if errors.Is(err, ErrChecksum) != wellFormed {
				t.Fatalf("Parse(%q) error %v, but reference structure check = %v", s, err, wellFormed)
			}
			if k != (Key{}) {
				t.Fatalf("Parse(%q) returned a non-zero Key with error %v", s, err)
			}
			return
		}

		if !valid {
			t.Fatalf("Parse(%q) succeeded, but the reference rejects it", s)
		}
		if got := k.Plaintext(); got != s {
			t.Fatalf("Parse(%q).Plaintext() = %q", s, got)
		}
		if !strings.HasPrefix(s, k.ID()) || len(k.ID()) != len(k.Prefix())+1+idRandomLength {
			t.Fatalf("Parse(%q).ID() = %q is not the key ID", s, k.ID())
		}
		if !strings.HasPrefix(k.ID(), k.Prefix()+"_") || !ValidPrefix(k.Prefix()) {
			t.Fatalf("Parse(%q).Prefix() = %q", s, k.Prefix())
		}
		if got := scanRegexp.FindString(s); got != s {
			t.Fatalf("Regexp.FindString(%q) = %q", s, got)
		}
		if k.Digest() != Digest(sha256.Sum256([]byte(s))) {
			t.Fatalf("Parse(%q).Digest() is not the SHA-256 of the key", s)
		}
		body := s[len(k.ID()):]
		for _, formatted := range []string{k.String(), k.GoString(), fmt.Sprintf("%v %+v %#v %q", k, &k, k, k)} {
			if strings.Contains(formatted, body) {
				t.Fatalf("formatting Parse(%q) leaks the key: %q", s, formatted)
			}
		}
	})
}
