"""HS code formats, shared by the seed (pandas) and the cleaning job (Spark).

A national tariff code is 6 (HS), 8 (e.g. EU CN) or 10 (e.g. TARIC, US HTS) digits; spaces
and dots between digit groups (``3924.10.00``) are formatting. Its first six digits are the
HS subheading (HS6), the first four the heading (HS4), the first two the chapter (HS2).
Codes of other lengths are rejected rather than guessed (a 9-digit code may have lost a
leading zero in a spreadsheet, or a digit anywhere).
"""

CODE_SEPARATORS = r"[\s.]"
NATIONAL_CODE = r"\d{6}|\d{8}|\d{10}"
HS6 = r"^\d{6}$"
