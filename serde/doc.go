// Package serde turns typed keys and values into the bytes Kafka stores and back.
//
// A [Serde] is a plain struct of two functions and a name. It is a struct, not an
// interface, so a serde for a new type is a literal — no named type with methods —
// and the topology can carry serdes of many types without reflection:
//
//	orders := serde.JSON[Order]()
//	b, err := orders.Serialize(Order{ID: "o-1"})
//
// The built-in serdes match Apache Kafka's byte formats where Kafka has one
// (String is UTF-8 bytes, Int64 is LongSerializer's 8-byte big-endian, Float64 is
// DoubleSerializer's 8-byte IEEE 754 big-endian), so topics written by weir read
// correctly in Java, kcat or Python and the other way round.
//
// # Nil and empty bytes
//
// In Kafka a record whose value is null is a tombstone: it deletes the key from a
// compacted topic and from a KTable. The stream runtime recognises a nil value as a
// tombstone before it calls Deserialize, so deserializers only see real payloads.
// Each serde documents what it does with nil anyway, because tools and tests call
// them directly:
//
//   - String and Bytes accept nil (the empty string, a nil slice);
//   - Int64, Float64, JSON and Msgpack reject nil and empty input with an error,
//     because there is no value to return that could not be confused with a real one.
//
// Serialize never returns nil for a non-nil value, except Bytes, which passes its
// input through: Bytes().Serialize(nil) is nil, a tombstone.
//
// # Errors
//
// Serdes return errors, never panic. Every decoding failure matches [ErrDecode]
// and every encoding failure matches [ErrEncode] with errors.Is, so callers can
// route bad records (skip, fail, dead-letter) without knowing which serde
// failed. Custom serdes build such errors with [DecodeError] and [EncodeError].
// Decoding is also bounded: a corrupt or hostile record cannot make a
// deserializer allocate far more than its own size or recurse without limit.
//
// # Names
//
// [Serde.Name] identifies the byte format ("string", "int64", "json", ...). The
// `weir state` tooling stores it next to a store's data so it can print values it
// has no Go type for. Names of built-in serdes are stable; custom serdes should use
// their own names.
package serde
