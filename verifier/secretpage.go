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

package verifier

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
)

// A verifier starting over a million keys spends most of its CPU decoding
// the pages of its list. client-go's generated decoder builds every field
// of every Secret (its managedFields, labels, annotations, timestamps: 57
// allocations per hashed Secret) for a store that reads four of them. The
// page decoder below walks the API server's protobuf encoding and keeps
// only those: the name, namespace and resourceVersion, and the data, whose
// values stay slices of the page (the store copies what it keeps). Fields
// it does not read are skipped unparsed, as protobuf allows.
//
// Field numbers from k8s.io/api/core/v1/generated.proto and
// k8s.io/apimachinery/pkg/{runtime,apis/meta/v1}/generated.proto.
const (
	unknownRaw = 2 // runtime.Unknown.raw: the encoded object

	listMetadata = 1 // SecretList.metadata (ListMeta)
	listItems    = 2 // SecretList.items

	listMetaResourceVersion = 2
	listMetaContinue        = 3

	secretMetadata = 1 // Secret.metadata (ObjectMeta)
	secretData     = 2 // Secret.data: map<string, bytes>

	objectMetaName            = 1
	objectMetaNamespace       = 3
	objectMetaResourceVersion = 6

	mapKey   = 1
	mapValue = 2
)

// protobufMagic starts every object the API server encodes as protobuf.
var protobufMagic = []byte("k8s\x00")

// errPage wraps every error of the page decoder.
var errPage = errors.New("decoding a page of hashed Secrets")

// secretPage is what the feed reads of a SecretList page.
type secretPage struct {
	resourceVersion, continueToken string
}

// decodeSecretPage decodes body, a SecretList as the API server encodes it
// in protobuf, calling each with every Secret in turn (name, namespace,
// resourceVersion and data only). each must not keep the Secret or its
// data: both are reused and point into body. With each nil only the list's
// metadata is read, the items skipped.
func decodeSecretPage(body []byte, each func(*corev1.Secret)) (secretPage, error) {
	var page secretPage
	rest, ok := bytes.CutPrefix(body, protobufMagic)
	if !ok {
		return page, fmt.Errorf("%w: not the API server's protobuf encoding", errPage)
	}
	raw, err := field(rest, unknownRaw)
	if err != nil {
		return page, err
	}
	var s corev1.Secret
	in := interner{}
	err = walk(raw, func(num protowire.Number, v []byte) error {
		switch num {
		case listMetadata:
			return walk(v, func(num protowire.Number, v []byte) error {
				switch num {
				case listMetaResourceVersion:
					page.resourceVersion = string(v)
				case listMetaContinue:
					page.continueToken = string(v)
				}
				return nil
			})
		case listItems:
			if each == nil {
				return nil
			}
			if err := decodeSecret(v, &s, in); err != nil {
				return err
			}
			each(&s)
		}
		return nil
	})
	return page, err
}

// interner holds one copy of each string that every Secret of a page
// repeats (the namespace, the data keys), so that each is made once.
type interner map[string]string

func (in interner) string(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in) < 64 {
		in[s] = s
	}
	return s
}

// decodeSecret decodes what the store reads of an encoded Secret into s,
// reusing its data map.
func decodeSecret(b []byte, s *corev1.Secret, in interner) error {
	s.Name, s.Namespace, s.ResourceVersion = "", "", ""
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	clear(s.Data)
	return walk(b, func(num protowire.Number, v []byte) error {
		switch num {
		case secretMetadata:
			return walk(v, func(num protowire.Number, v []byte) error {
				switch num {
				case objectMetaName:
					s.Name = string(v)
				case objectMetaNamespace:
					s.Namespace = in.string(v)
				case objectMetaResourceVersion:
					s.ResourceVersion = string(v)
				}
				return nil
			})
		case secretData:
			var key string
			var value []byte
			if err := walk(v, func(num protowire.Number, v []byte) error {
				switch num {
				case mapKey:
					key = in.string(v)
				case mapValue:
					value = v
				}
				return nil
			}); err != nil {
				return err
			}
			s.Data[key] = value
		}
		return nil
	})
}

// field returns the value of the last length-delimited field num of b.
func field(b []byte, want protowire.Number) ([]byte, error) {
	var out []byte
	err := walk(b, func(num protowire.Number, v []byte) error {
		if num == want {
			out = v
		}
		return nil
	})
	if err == nil && out == nil {
		return nil, fmt.Errorf("%w: field %d missing", errPage, want)
	}
	return out, err
}

// walk calls fn with the number and value of every length-delimited field of
// the message b, in order; other fields are skipped. A malformed message is
// an error, never a panic.
func walk(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", errPage, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %w", errPage, num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("%w: field %d: %w", errPage, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}
