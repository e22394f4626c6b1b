/* flags/flags_xsetbits.h — X-macro expander (no include guard, included repeatedly by flags.h):
 * makes the rows of a .def file into the "explicitly set" bits of the typed struct. */
#include "flags/flags_xundef.h"
#define FLAG_BOOL(n, d, t, h) bool n;
#define FLAG_INT(n, d, lo, hi, t, h) bool n;
#define FLAG_INT_NONE(n, lo, hi, t, h) bool n;
#define FLAG_FLOAT(n, d, lo, hi, t, h) bool n;
#define FLAG_FLOAT_NONE(n, lo, hi, t, h) bool n;
#define FLAG_STRING(n, d, t, h) bool n;
#define FLAG_ENUM(n, d, c, bare, t, h) bool n;
