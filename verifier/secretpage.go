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
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

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
// data: both are reused. With each nil only the list's metadata is read,
// the items skipped.
func decodeSecretPage(body []byte, each func(*corev1.Secret)) (secretPage, error) {
	return readSecretList(bufio.NewReader(bytes.NewReader(body)), each)
}

// maxSecretSize bounds one encoded Secret of a list: the API server
// refuses Secrets over 1 MiB of data; the rest is metadata.
const maxSecretSize = 4 << 20

// readSecretList reads a SecretList in the API server's protobuf encoding
// from r as it arrives, one Secret at a time: however long the list, what
// is held is one encoded Secret (and the reader's buffer). each is called
// as decodeSecretPage's.
func readSecretList(r *bufio.Reader, each func(*corev1.Secret)) (secretPage, error) {
	var page secretPage
	magic := make([]byte, len(protobufMagic))
	if _, err := io.ReadFull(r, magic); err != nil || !bytes.Equal(magic, protobufMagic) {
		return page, fmt.Errorf("%w: not the API server's protobuf encoding", errPage)
	}
	// runtime.Unknown, to the end of the body: the list is its raw field.
	top := &stream{r: r, left: math.MaxUint64}
	found := false
	for {
		num, typ, err := top.tag()
		if err == io.EOF {
			break
		}
		if err != nil {
			return page, err
		}
		if num != unknownRaw || typ != protowire.BytesType {
			if err := top.skip(typ); err != nil {
				return page, err
			}
			continue
		}
		n, err := top.uvarint()
		if err != nil {
			return page, err
		}
		if n > top.left {
			return page, fmt.Errorf("%w: %w", errPage, io.ErrUnexpectedEOF)
		}
		top.left -= n
		list := &stream{r: r, left: n}
		if page, err = readList(list, each); err != nil {
			return page, err
		}
		found = true
	}
	if !found {
		return page, fmt.Errorf("%w: field %d missing", errPage, unknownRaw)
	}
	return page, nil
}

// readList reads the fields of a SecretList from l.
func readList(l *stream, each func(*corev1.Secret)) (secretPage, error) {
	var (
		page secretPage
		s    corev1.Secret
		buf  []byte
	)
	in := interner{}
	for l.left > 0 {
		num, typ, err := l.tag()
		if err != nil {
			return page, unexpected(err)
		}
		if typ != protowire.BytesType || (num != listMetadata && (num != listItems || each == nil)) {
			if err := l.skip(typ); err != nil {
				return page, err
			}
			continue
		}
		if buf, err = l.bytes(buf); err != nil {
			return page, err
		}
		if num == listMetadata {
			err = readListMeta(buf, &page)
		} else if err = decodeSecret(buf, &s, in); err == nil {
			each(&s)
		}
		if err != nil {
			return page, err
		}
	}
	return page, nil
}

// readListMeta reads the resourceVersion and continue token of an encoded
// ListMeta into page.
func readListMeta(b []byte, page *secretPage) error {
	return walk(b, func(num protowire.Number, v []byte) error {
		switch num {
		case listMetaResourceVersion:
			page.resourceVersion = string(v)
		case listMetaContinue:
			page.continueToken = string(v)
		}
		return nil
	})
}

// stream reads protobuf fields from r, at most left bytes of them.
type stream struct {
	r    *bufio.Reader
	left uint64
}

func (s *stream) readByte() (byte, error) {
	if s.left == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	b, err := s.r.ReadByte()
	if err == nil {
		s.left--
	}
	return b, err
}

// uvarint reads a varint. io.EOF only when nothing at all was left.
func (s *stream) uvarint() (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := s.readByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: a varint overflows", errPage)
}

// tag reads a field's number and wire type; io.EOF at the end of the input.
func (s *stream) tag() (protowire.Number, protowire.Type, error) {
	v, err := s.uvarint()
	if err != nil {
		return 0, 0, err
	}
	num, typ := protowire.DecodeTag(v)
	if num < protowire.MinValidNumber {
		return 0, 0, fmt.Errorf("%w: invalid field number", errPage)
	}
	return num, typ, nil
}

// bytes reads a length-delimited value into buf, grown as needed.
func (s *stream) bytes(buf []byte) ([]byte, error) {
	n, err := s.uvarint()
	switch {
	case err != nil:
		return buf, unexpected(err)
	case n > maxSecretSize:
		return buf, fmt.Errorf("%w: a field of %d bytes, more than any Secret", errPage, n)
	case n > s.left:
		return buf, fmt.Errorf("%w: %w", errPage, io.ErrUnexpectedEOF)
	}
	buf = slices.Grow(buf[:0], int(n))[:n]
	read, err := io.ReadFull(s.r, buf)
	s.left -= count(read)
	return buf, unexpected(err)
}

// count is a byte count (never negative) as the uint64 the stream counts in.
func count(n int) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// skip reads past a field's value of wire type typ.
func (s *stream) skip(typ protowire.Type) error {
	var n uint64
	switch typ {
	case protowire.VarintType:
		_, err := s.uvarint()
		return unexpected(err)
	case protowire.Fixed32Type:
		n = 4
	case protowire.Fixed64Type:
		n = 8
	case protowire.BytesType:
		v, err := s.uvarint()
		if err != nil {
			return unexpected(err)
		}
		n = v
	default:
		return fmt.Errorf("%w: wire type %d", errPage, typ)
	}
	if n > s.left {
		return fmt.Errorf("%w: %w", errPage, io.ErrUnexpectedEOF)
	}
	for n > 0 {
		d, err := s.r.Discard(int(min(n, 1<<30)))
		s.left -= count(d)
		n -= count(d)
		if err != nil {
			return unexpected(err)
		}
	}
	return nil
}

// unexpected turns an end of input inside a message into errPage.
func unexpected(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errPage):
		return err
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: %w", errPage, io.ErrUnexpectedEOF)
	default:
		return err
	}
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
