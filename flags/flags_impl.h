/* flags/flags_impl.h — internals shared by flags/flags.c and flags/help.c; not for other
 * modules. */
#ifndef SB_FLAGS_IMPL_H
#define SB_FLAGS_IMPL_H

#include "flags/flags.h"

/* absl's "syntactic help" of a row into buf: "a positive integer", "an integer in the range
 * [-1, 10]", "a number", "a boolean", "a string", "one of <a|b|c>". */
void flags_syntax(const flags_def *d, char *buf, size_t n);

/* d's enum choices for display, "<a|b|c>", the empty choice shown as ''. */
void flags_choices_text(const flags_def *d, char *buf, size_t n);

/* The shortest text that reads back as v, in Python's repr style ("4e-05", "0.95", "1.0"). */
void flags_format_double(double v, char *buf, size_t n);

/* Pointers into a bound struct. */
#define FLAGS_FIELD(d, values, T) ((T *)((char *)(values) + (d)->offset))
#define FLAGS_SETBIT(d, values) ((bool *)((char *)(values) + (d)->set_offset))

#endif
