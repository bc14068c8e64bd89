package registry

import (
	"bytes"
	"strings"
	"testing"
)

// The fast path must write exactly what the codec writes, for every
// length form.
func TestEncodeFastMatchesCodec(t *testing.T) {
	values := []any{[]byte(nil), []byte{}, []byte("x"), "", "é", "\xff not UTF-8"}
	for _, n := range []int{23, 24, 255, 256, 65535, 65536} {
		values = append(values, bytes.Repeat([]byte{7}, n), strings.Repeat("s", n))
	}
	for _, v := range values {
		fast, ok := encodeFast(v)
		if !ok {
			t.Fatalf("encodeFast(%T len %d) declined", v, lenOf(v))
		}
		want, err := encMode.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, want) {
			t.Fatalf("%T len %d: fast % x, codec % x", v, lenOf(v), head(fast), head(want))
		}
		args := []any{v, "b", []byte("c")}
		fastArgs, _ := encodeArgsFast(args)
		slow, err := encMode.Marshal(args)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fastArgs, slow) {
			t.Fatalf("arguments %T len %d: fast % x, codec % x", v, lenOf(v), head(fastArgs), head(slow))
		}
	}
	if _, ok := encodeArgsFast([]any{"a", 1}); ok {
		t.Fatal("encodeArgsFast took an int")
	}
}

func lenOf(v any) int {
	switch t := v.(type) {
	case []byte:
		return len(t)
	case string:
		return len(t)
	}
	return -1
}

func head(b []byte) []byte { return b[:min(len(b), 12)] }

// FuzzDecodeFast checks that the fast path decodes what the codec
// decodes, to the same value, and declines the rest to it; and that a
// decoded byte slice never shares the input's memory.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range [][]byte{{0x40}, {0x41, 'a', 'b'}, {0x58, 2, 'a', 'b'}, {0x5f, 0x41, 'a', 0xff}, {0xf6},
		{0x60}, {0x62, 0xc3, 0xa9}, {0x61, 0xff}, {0x7a, 0, 0, 0, 1, 'z'}, {0x5b, 0, 0, 0, 0, 0, 0, 0, 1, 'q'},
		{0x59, 0xff}, {0x01}, {0xc2, 0x41, 0}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var fastB, slowB []byte
		if rest, ok := decodeFast(in, &fastB); ok {
			srest, err := decMode.UnmarshalFirst(in, &slowB)
			if err != nil {
				t.Fatalf("% x: fast decoded a []byte the codec refuses: %v", in, err)
			}
			if !bytes.Equal(fastB, slowB) || (fastB == nil) != (slowB == nil) || len(rest) != len(srest) {
				t.Fatalf("% x: fast %#v (rest %d), codec %#v (rest %d)", in, fastB, len(rest), slowB, len(srest))
			}
			before := bytes.Clone(in)
			for i := range fastB {
				fastB[i] ^= 0xff
			}
			if !bytes.Equal(in, before) {
				t.Fatalf("% x: the decoded bytes share the input's memory", before)
			}
		}
		var fastS, slowS string
		if rest, ok := decodeFast(in, &fastS); ok {
			srest, err := decMode.UnmarshalFirst(in, &slowS)
			if err != nil || fastS != slowS || len(rest) != len(srest) {
				t.Fatalf("% x: fast %q (rest %d), codec %q (rest %d, %v)", in, fastS, len(rest), slowS, len(srest), err)
			}
		}
	})
}
