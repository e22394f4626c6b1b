/* flags/flags_xundef.h — forget the X-macro row names (no include guard). */
#undef FLAG_BOOL
#undef FLAG_INT
#undef FLAG_INT_NONE
#undef FLAG_FLOAT
#undef FLAG_FLOAT_NONE
#undef FLAG_STRING
#undef FLAG_ENUM
