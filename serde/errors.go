package serde

import "errors"

// Errors wrapped by every serde in this package.
var (
	// ErrDecode reports bytes that do not decode to a value of the serde's type.
	ErrDecode = errors.New("serde: cannot decode")
	// ErrEncode reports a value the serde cannot encode.
	ErrEncode = errors.New("serde: cannot encode")
)

// codecError reads as its own message ("serde: int64 needs 8 bytes, got 3")
// rather than repeating the sentinel's text, matches its sentinel with errors.Is,
// and unwraps to the underlying library error, if any.
type codecError struct {
	sentinel error
	msg      string
	cause    error
}

func (e *codecError) Error() string {
	if e.cause == nil {
		return e.msg
	}
	return e.msg + ": " + e.cause.Error()
}

func (e *codecError) Is(target error) bool { return target == e.sentinel }

func (e *codecError) Unwrap() error { return e.cause }

// DecodeError returns an error that matches [ErrDecode] with errors.Is, reads as
// msg (followed by cause, if not nil) and unwraps to cause. Custom serdes use it
// so that bad input is classified the same way as with the built-in serdes.
func DecodeError(msg string, cause error) error {
	return &codecError{sentinel: ErrDecode, msg: msg, cause: cause}
}

// EncodeError is like [DecodeError] for [ErrEncode].
func EncodeError(msg string, cause error) error {
	return &codecError{sentinel: ErrEncode, msg: msg, cause: cause}
}
