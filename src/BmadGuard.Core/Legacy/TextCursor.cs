using System;

namespace BmadGuard.Core.Legacy
{
    /// <summary>
    /// Line and column of increasing byte offsets in one text, in one pass over it: each call advances from the last
    /// offset instead of counting from the start of the file (which made verify and repair quadratic in the events).
    /// </summary>
    internal sealed class TextCursor
    {
        private readonly byte[] _text;
        private long _pos;
        private int _line = 1;
        private int _column = 1;

        public TextCursor(byte[] text) => _text = text;

        public (int Line, int Column) At(long offset)
        {
            if (offset < _pos)
            {
                _pos = 0;
                _line = 1;
                _column = 1;
            }

            long end = Math.Min(offset, _text.Length);
            for (long i = _pos; i < end; i++)
            {
                byte b = _text[i];
                if (b == (byte)'\n')
                {
                    _line++;
                    _column = 1;
                }
                else if ((b & 0xC0) != 0x80)
                {
                    _column++; // count characters, not continuation bytes
                }
            }

            _pos = Math.Max(_pos, end);
            return (_line, _column);
        }
    }
}
