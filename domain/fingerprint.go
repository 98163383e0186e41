package domain

import (
	"encoding/json"
	"hash/fnv"
	"strconv"
)

// Fingerprint identifies what a command asks for, apart from when it was sent: its type, its
// opportunity, its actor, its expected version and its body. It is what the IETF
// idempotency-key draft calls the request fingerprint: a command id (the Idempotency-Key)
// used again with the same fingerprint is a retry, answered with the first outcome; with
// another fingerprint it is a client's mistake, refused rather than silently answered with
// the result of a different request. issuedAt is left out (a retry is sent later). Never 0,
// which marks a ring entry written before fingerprints were kept.
func Fingerprint(cmd Command) uint64 {
	h := fnv.New64a()
	write := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	write(string(cmd.Type))
	write(cmd.OpportunityID)
	write(cmd.Actor)
	if cmd.ExpectedVersion != nil {
		write(strconv.FormatInt(*cmd.ExpectedVersion, 10))
	} else {
		write("-")
	}
	var body any
	switch cmd.Type {
	case CmdCreate:
		body = cmd.Create
	case CmdUpdate:
		body = cmd.Update
	case CmdChangeStage:
		body = cmd.ChangeStage
	case CmdCloseWon:
		body = cmd.CloseWon
	case CmdCloseLost:
		body = cmd.CloseLost
	case CmdReopen:
		body = cmd.Reopen
	}
	// The bodies are plain structs of strings, numbers and pointers to them: their JSON is
	// deterministic (fields in declaration order) and cannot fail.
	b, _ := json.Marshal(body)
	h.Write(b)
	if f := h.Sum64(); f != 0 {
		return f
	}
	return 1
}
