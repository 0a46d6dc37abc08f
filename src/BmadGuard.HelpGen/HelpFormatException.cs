using System;

namespace BmadGuard.HelpGen
{
    /// <summary>A help source (markdown page or psd1) that cannot be turned into help; names the file and the line.</summary>
    public sealed class HelpFormatException : Exception
    {
        public HelpFormatException(string file, int line, string problem)
            : base($"{file}:{line}: {problem}")
        {
            File = file;
            Line = line;
            Problem = problem;
        }

        /// <summary>The file that holds the problem.</summary>
        public string File { get; }

        /// <summary>1-based line of the problem.</summary>
        public int Line { get; }

        /// <summary>What is wrong, without the location.</summary>
        public string Problem { get; }
    }
}
