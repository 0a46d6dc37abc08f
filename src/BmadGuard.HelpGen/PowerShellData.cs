using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;

namespace BmadGuard.HelpGen
{
    /// <summary>
    /// Reads a PowerShell data file (.psd1) without PowerShell: the restricted language that Import-PowerShellDataFile
    /// accepts — hashtables <c>@{ Key = value }</c> (entries split by newlines or ';'), arrays <c>@( )</c> and
    /// comma lists, single- and double-quoted strings (here-strings too), numbers, <c>$true</c>, <c>$false</c>,
    /// <c>$null</c>, and comments. Anything else (a variable, a command, a sub-expression) is an error naming
    /// the line, as Import-PowerShellDataFile would refuse it.
    /// Values: string, bool, long, double, null, <see cref="List{T}"/> of values, case-insensitive dictionary.
    /// </summary>
    public sealed class PowerShellData
    {
        private readonly string _text;
        private readonly string _file;
        private int _pos;

        private PowerShellData(string text, string file)
        {
            _text = text.Length > 0 && text[0] == '\uFEFF' ? text.Substring(1) : text;
            _file = file;
        }

        public static Dictionary<string, object?> ReadFile(string path) => Parse(File.ReadAllText(path), path);

        public static Dictionary<string, object?> Parse(string text, string file)
        {
            var p = new PowerShellData(text, file);
            p.SkipTrivia(newlines: true);
            if (!p.TryTake("@{"))
            {
                throw p.Error("a data file must hold one hashtable starting with '@{'");
            }

            Dictionary<string, object?> result = p.ReadHashtableBody();
            p.SkipTrivia(newlines: true);
            if (p._pos < p._text.Length)
            {
                throw p.Error("unexpected text after the closing '}' of the hashtable");
            }

            return result;
        }

        /// <summary>A string or list-of-strings entry as a list (a single string becomes one item); empty when absent.</summary>
        public static List<string> StringList(IDictionary<string, object?> data, string key)
        {
            if (!data.TryGetValue(key, out object? value) || value == null)
            {
                return new List<string>();
            }

            if (value is string s)
            {
                return new List<string> { s };
            }

            if (value is List<object?> list)
            {
                return list.Select(v => v as string ?? throw new InvalidDataException($"{key}: every item must be a string")).ToList();
            }

            throw new InvalidDataException($"{key} must be a string or an array of strings");
        }

        private int Line => _text.Take(_pos).Count(c => c == '\n') + 1;

        private HelpFormatException Error(string problem) => new HelpFormatException(_file, Line, problem);

        private char Peek(int ahead = 0) => _pos + ahead < _text.Length ? _text[_pos + ahead] : '\0';

        private bool TryTake(string s)
        {
            if (string.CompareOrdinal(_text, _pos, s, 0, s.Length) == 0)
            {
                _pos += s.Length;
                return true;
            }

            return false;
        }

        private void SkipTrivia(bool newlines)
        {
            while (_pos < _text.Length)
            {
                char c = _text[_pos];
                if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n'))
                {
                    _pos++;
                }
                else if (c == '`' && (Peek(1) == '\n' || (Peek(1) == '\r' && Peek(2) == '\n')))
                {
                    _pos += Peek(1) == '\n' ? 2 : 3; // line continuation
                }
                else if (c == '<' && Peek(1) == '#')
                {
                    int end = _text.IndexOf("#>", _pos + 2, StringComparison.Ordinal);
                    if (end < 0)
                    {
                        throw Error("the block comment '<#' is never closed");
                    }

                    _pos = end + 2;
                }
                else if (c == '#')
                {
                    while (_pos < _text.Length && _text[_pos] != '\n')
                    {
                        _pos++;
                    }
                }
                else
                {
                    break;
                }
            }
        }

        private Dictionary<string, object?> ReadHashtableBody()
        {
            var table = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
            while (true)
            {
                SkipTrivia(newlines: true);
                while (Peek() == ';')
                {
                    _pos++;
                    SkipTrivia(newlines: true);
                }

                if (Peek() == '}')
                {
                    _pos++;
                    return table;
                }

                if (_pos >= _text.Length)
                {
                    throw Error("the hashtable is never closed with '}'");
                }

                int keyLine = Line;
                string key = ReadKey();
                SkipTrivia(newlines: false);
                if (!TryTake("="))
                {
                    throw Error($"expected '=' after the key '{key}'");
                }

                SkipTrivia(newlines: true);
                object? value = ReadPipelineValue();
                if (table.ContainsKey(key))
                {
                    throw new HelpFormatException(_file, keyLine, $"duplicate key '{key}'");
                }

                table[key] = value;
                SkipTrivia(newlines: false);
                char next = Peek();
                if (next != '\n' && next != ';' && next != '}' && next != '\0')
                {
                    throw Error($"expected a new line, ';' or '}}' after the value of '{key}'");
                }
            }
        }

        private string ReadKey()
        {
            char c = Peek();
            if (c == '\'' || c == '"')
            {
                return ReadString();
            }

            int start = _pos;
            while (_pos < _text.Length && (char.IsLetterOrDigit(_text[_pos]) || _text[_pos] == '_' || _text[_pos] == '-' || _text[_pos] == '.'))
            {
                _pos++;
            }

            if (_pos == start)
            {
                throw Error($"expected a hashtable key, found '{c}'");
            }

            return _text.Substring(start, _pos - start);
        }

        /// <summary>A value, or a comma list of values (which is an array).</summary>
        private object? ReadPipelineValue()
        {
            object? first = ReadValue();
            SkipTrivia(newlines: false);
            if (Peek() != ',')
            {
                return first;
            }

            var list = new List<object?> { first };
            while (Peek() == ',')
            {
                _pos++;
                SkipTrivia(newlines: true);
                list.Add(ReadValue());
                SkipTrivia(newlines: false);
            }

            return list;
        }

        private object? ReadValue()
        {
            char c = Peek();
            if (TryTake("@{"))
            {
                return ReadHashtableBody();
            }

            if (TryTake("@("))
            {
                var list = new List<object?>();
                while (true)
                {
                    SkipTrivia(newlines: true);
                    if (Peek() == ')')
                    {
                        _pos++;
                        return list;
                    }

                    if (_pos >= _text.Length)
                    {
                        throw Error("the array '@(' is never closed with ')'");
                    }

                    object? item = ReadValue();
                    list.Add(item);
                    SkipTrivia(newlines: true);
                    if (Peek() == ',' || Peek() == ';')
                    {
                        _pos++;
                        SkipTrivia(newlines: true);
                        if (Peek() == ')' || Peek() == ',')
                        {
                            throw Error("an empty item in the array (two commas, or a comma before ')')");
                        }
                    }
                }
            }

            if (c == '@' && (Peek(1) == '\'' || Peek(1) == '"'))
            {
                return ReadHereString();
            }

            if (c == '\'' || c == '"')
            {
                return ReadString();
            }

            if (c == '$')
            {
                int start = _pos;
                _pos++;
                while (_pos < _text.Length && (char.IsLetterOrDigit(_text[_pos]) || _text[_pos] == '_'))
                {
                    _pos++;
                }

                string name = _text.Substring(start, _pos - start).ToLowerInvariant();
                switch (name)
                {
                    case "$true":
                        return true;
                    case "$false":
                        return false;
                    case "$null":
                        return null;
                    default:
                        _pos = start;
                        throw Error($"'{_text.Substring(start, Math.Max(1, name.Length))}' is a variable; a data file may use only $true, $false and $null");
                }
            }

            if (char.IsDigit(c) || ((c == '-' || c == '+' || c == '.') && char.IsDigit(Peek(1))))
            {
                int start = _pos;
                _pos++;
                while (_pos < _text.Length && (char.IsLetterOrDigit(_text[_pos]) || _text[_pos] == '.'))
                {
                    _pos++;
                }

                string number = _text.Substring(start, _pos - start);
                if (long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
                {
                    return l;
                }

                if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
                {
                    return d;
                }

                _pos = start;
                throw Error($"'{number}' is not a number");
            }

            if (c == '\0')
            {
                throw Error("the file ends where a value was expected");
            }

            throw Error($"'{c}' cannot start a value in a data file (strings, numbers, @(), @{{}}, $true, $false, $null)");
        }

        private string ReadString()
        {
            char quote = _text[_pos];
            int startLine = Line;
            _pos++;
            var sb = new StringBuilder();
            while (true)
            {
                if (_pos >= _text.Length)
                {
                    throw new HelpFormatException(_file, startLine, "the string opened here is never closed");
                }

                char c = _text[_pos++];
                if (quote == '\'')
                {
                    if (IsSingleQuote(c))
                    {
                        if (_pos < _text.Length && IsSingleQuote(_text[_pos]))
                        {
                            sb.Append('\'');
                            _pos++;
                            continue;
                        }

                        return sb.ToString();
                    }

                    sb.Append(c);
                    continue;
                }

                if (c == '"')
                {
                    if (Peek() == '"')
                    {
                        sb.Append('"');
                        _pos++;
                        continue;
                    }

                    return sb.ToString();
                }

                if (c == '`' && _pos < _text.Length)
                {
                    char e = _text[_pos++];
                    sb.Append(e switch { 'n' => '\n', 'r' => '\r', 't' => '\t', '0' => '\0', 'a' => '\a', 'b' => '\b', 'f' => '\f', 'v' => '\v', _ => e });
                    continue;
                }

                if (c == '$' && _pos < _text.Length && (char.IsLetter(_text[_pos]) || _text[_pos] == '(' || _text[_pos] == '{'))
                {
                    _pos--;
                    throw Error("a double-quoted string in a data file may not expand a variable or sub-expression");
                }

                sb.Append(c);
            }
        }

        private static bool IsSingleQuote(char c) => c == '\'' || c == '\u2018' || c == '\u2019' || c == '\u201A' || c == '\u201B';

        private string ReadHereString()
        {
            char quote = _text[_pos + 1];
            int startLine = Line;
            _pos += 2;
            SkipTrivia(newlines: false);
            if (Peek() != '\n')
            {
                throw Error("a here-string's opening @' or @\" must end its line");
            }

            _pos++;
            string terminator = "\n" + quote + "@";
            int end = _text.IndexOf(terminator, _pos - 1, StringComparison.Ordinal);
            if (end < 0)
            {
                throw new HelpFormatException(_file, startLine, "the here-string opened here is never closed");
            }

            string body = end < _pos ? string.Empty : _text.Substring(_pos, end - _pos).TrimEnd('\r');
            _pos = end + terminator.Length;
            return body;
        }
    }
}
