package serde_test

import (
	"errors"
	"fmt"

	"github.com/weir-io/weir/serde"
)

func Example() {
	type Order struct {
		ID     string  `json:"id"`
		Amount float64 `json:"amount"`
	}
	orders := serde.JSON[Order]()

	b, err := orders.Serialize(Order{ID: "o-1", Amount: 9.5})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))

	o, err := orders.Deserialize(b)
	fmt.Println(o.ID, o.Amount, err)
	// Output:
	// {"id":"o-1","amount":9.5}
	// o-1 9.5 <nil>
}

func ExampleInt64() {
	counts := serde.Int64()
	b, _ := counts.Serialize(258)
	fmt.Printf("% x\n", b) // the bytes Kafka's LongSerializer writes

	_, err := counts.Deserialize([]byte{1, 2, 3})
	fmt.Println(err)
	fmt.Println(errors.Is(err, serde.ErrDecode))
	// Output:
	// 00 00 00 00 00 00 01 02
	// serde: int64 needs 8 bytes, got 3
	// true
}

func ExampleString() {
	words := serde.String()
	b, _ := words.Serialize("weir")
	fmt.Println(len(b))

	s, err := words.Deserialize(nil) // a tombstone's nil value reads as ""
	fmt.Printf("%q %v\n", s, err)
	// Output:
	// 4
	// "" <nil>
}

func ExampleMsgpack() {
	type Click struct {
		User string
		Page string
	}
	clicks := serde.Msgpack[Click]()
	b, _ := clicks.Serialize(Click{User: "ada", Page: "/"})
	c, err := clicks.Deserialize(b)
	fmt.Println(c.User, c.Page, err)

	_, err = clicks.Deserialize(append(b, 0)) // trailing garbage: probably another serde
	fmt.Println(errors.Is(err, serde.ErrDecode))
	// Output:
	// ada / <nil>
	// true
}

// A custom serde is a struct literal. DecodeError classifies its failures like
// those of the built-in serdes.
func ExampleSerde() {
	bools := serde.Serde[bool]{
		Name: "bool",
		Serialize: func(v bool) ([]byte, error) {
			if v {
				return []byte{1}, nil
			}
			return []byte{0}, nil
		},
		Deserialize: func(b []byte) (bool, error) {
			if len(b) != 1 || b[0] > 1 {
				return false, serde.DecodeError(fmt.Sprintf("bool: want one byte 0 or 1, got %x", b), nil)
			}
			return b[0] == 1, nil
		},
	}
	v, err := bools.Deserialize([]byte{1})
	fmt.Println(v, err)
	_, err = bools.Deserialize([]byte{7})
	fmt.Println(err, errors.Is(err, serde.ErrDecode))
	// Output:
	// true <nil>
	// bool: want one byte 0 or 1, got 07 true
}
