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

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/keyward/keyward/internal/keys"
)

// maxKeyInput bounds what is read from stdin: a key is at most
// keys.MaxKeyLength characters, with room for whitespace around it.
const maxKeyInput = 4096

var (
	errEmptyInput = errors.New("stdin holds no key: pipe the key in, e.g. `pbpaste | kubectl keyward identify`")
	errLongInput  = fmt.Errorf("stdin holds more than %d bytes: pass exactly one key", maxKeyInput)
	errManyKeys   = errors.New("stdin holds more than one word: pass exactly one key, alone")
	// errLookAlike is a string shaped like a key whose checksum is wrong:
	// not a keyward key, whatever a scanner says.
	errLookAlike = errors.New("not a keyward key: it has the shape of one but its checksum does not match (a look-alike, or a key mistyped or cut short); no key was looked up")
)

// readKey reads one key, a leaked key's plaintext, from in and checks its
// format and checksum. On a terminal it reads without echo. Its errors never
// hold any of the input.
func readKey(in io.Reader, prompt io.Writer) (keys.Key, error) {
	b, err := readSecretInput(in, prompt)
	if err != nil {
		return keys.Key{}, err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return keys.Key{}, errEmptyInput
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return keys.Key{}, errManyKeys
	}
	k, err := keys.Parse(s)
	switch {
	case errors.Is(err, keys.ErrChecksum):
		return keys.Key{}, errLookAlike
	case err != nil:
		// keys' errors are fixed values that never quote the input.
		return keys.Key{}, fmt.Errorf("not a keyward key: %w", err)
	}
	return k, nil
}

// readSecretInput reads stdin, hiding the input when it is a terminal.
func readSecretInput(in io.Reader, prompt io.Writer) ([]byte, error) {
	if f, ok := in.(*os.File); ok {
		fd := int(f.Fd())
		if term.IsTerminal(fd) {
			fmt.Fprint(prompt, "Key (input hidden): ")
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(prompt)
			if err != nil {
				return nil, fmt.Errorf("reading the key from the terminal: %w", err)
			}
			return b, nil
		}
	}
	b, err := io.ReadAll(io.LimitReader(in, maxKeyInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading the key from stdin: %w", err)
	}
	if len(b) > maxKeyInput {
		return nil, errLongInput
	}
	return b, nil
}
