//! The console's words, in Chinese and English, from one catalogue: every
//! string a page shows is a [`Msg`], so a page cannot show text that has no
//! translation. Chinese is the default; each person picks a language.

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 简体中文, the default: the domain's users are Chinese government staff.
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The language a cookie or query value names, if any.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Its code, for `lang` attributes and cookies.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The short code the switch uses.
    pub fn short(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// Every text the console shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Msg {
    Title,
    SignIn,
    SignOut,
    TokenLabel,
    TokenHelp,
    BadToken,
    SignedInAs,
    Queue,
    QueueEmpty,
    Output,
    State,
    Organization,
    Grant,
    Label,
    Checks,
    Waiting,
    Votes,
    FilterState,
    AllStates,
    Apply,
    SortBy,
    Newest,
    Oldest,
    Content,
    ContentLegend,
    MoreRows,
    FlaggedCells,
    Check,
    Status,
    Remedy,
    Summary,
    Lineage,
    Job,
    Operator,
    Module,
    Datasets,
    Queries,
    Refused,
    JobLog,
    JobError,
    VotesHidden,
    VoteBy,
    Decide,
    Approve,
    Reject,
    Return,
    Reason,
    Override,
    Justification,
    NoVoteHere,
    Tampered,
    TamperedHelp,
    Forbidden,
    CsrfFailed,
    NotFound,
    VoteRefused,
    VoteRecorded,
    Language,
    Minutes,
    Hours,
    Days,
    Header,
    Row,
}

/// The text of `msg` in `lang`.
pub fn t(lang: Lang, msg: Msg) -> &'static str {
    use Msg::*;
    let (zh, en) = match msg {
        Title => ("Inland 可信数据空间 · 控制台", "Inland trusted domain · console"),
        SignIn => ("登录", "Sign in"),
        SignOut => ("退出", "Sign out"),
        TokenLabel => ("访问令牌", "Access token"),
        TokenHelp => (
            "粘贴管理员发给您的令牌（inl_ 开头）。令牌只保存在本服务器的会话中。",
            "Paste the token an admin issued you (it starts with inl_). It is kept only in this server's session.",
        ),
        BadToken => (
            "令牌无效、已过期或已吊销。",
            "The token is not valid, has expired or was revoked.",
        ),
        SignedInAs => ("当前用户", "Signed in as"),
        Queue => ("待审核队列", "Release queue"),
        QueueEmpty => ("没有待审核的输出。", "No outputs are waiting."),
        Output => ("输出", "Output"),
        State => ("状态", "State"),
        Organization => ("运营机构", "Operator"),
        Grant => ("授权", "Grant"),
        Label => ("标签", "Label"),
        Checks => ("检查结果", "Checks"),
        Waiting => ("等待时间", "Waiting"),
        Votes => ("投票", "Votes"),
        FilterState => ("按状态筛选", "Filter by state"),
        AllStates => ("全部", "All"),
        Apply => ("应用", "Apply"),
        SortBy => ("排序", "Sort"),
        Newest => ("最新优先", "Newest first"),
        Oldest => ("等待最久优先", "Waiting longest first"),
        Content => ("内容", "Content"),
        ContentLegend => (
            "标记的单元格：红色未通过检查（发布时将被抑制），黄色需人工审核。悬停可查看原因。",
            "Marked cells: red failed a check (suppressed in the release), yellow needs review. Hover for the reason.",
        ),
        MoreRows => ("更多行未显示", "more rows not shown"),
        FlaggedCells => ("被标记的单元格", "Flagged cells"),
        Check => ("检查", "Check"),
        Status => ("结果", "Status"),
        Remedy => ("处理", "Remedy"),
        Summary => ("说明", "Summary"),
        Lineage => ("来源", "Lineage"),
        Job => ("作业", "Job"),
        Operator => ("运营者", "Operator"),
        Module => ("组件", "Component"),
        Datasets => ("数据集", "Datasets"),
        Queries => ("查询（隔离文本）", "Queries (quarantined text)"),
        Refused => ("已拒绝", "refused"),
        JobLog => ("作业日志（隔离文本）", "Job log (quarantined text)"),
        JobError => ("作业错误", "Job error"),
        VotesHidden => (
            "已有部分投票；全部审核人投票后才显示。",
            "Some votes are in; they are shown once every reviewer has voted.",
        ),
        VoteBy => ("投票人", "by"),
        Decide => ("审核决定", "Decision"),
        Approve => ("批准发布", "Approve"),
        Reject => ("拒绝", "Reject"),
        Return => ("退回修改", "Return for changes"),
        Reason => ("理由", "Reason"),
        Override => ("覆盖此项检查", "Override this check"),
        Justification => ("覆盖的书面理由", "Written justification for overrides"),
        NoVoteHere => (
            "您不能对此输出投票（已投票、审核已结束，或您属于该运营机构）。",
            "You cannot vote on this output (you voted, the review is over, or you work for its operator).",
        ),
        Tampered => (
            "警告：此输出的密封文件无法打开——已被篡改，或其密钥已销毁。",
            "ALARM: this output's sealed file does not open — it was tampered with, or its key was destroyed.",
        ),
        TamperedHelp => (
            "不要批准。此事件已记录在证据账本中；请通知管理员。",
            "Do not approve. This was recorded in the evidence ledger; tell an admin.",
        ),
        Forbidden => ("您无权执行此操作。", "You may not do this."),
        CsrfFailed => (
            "表单已过期或来自别处，未执行任何操作。请重新打开页面。",
            "The form is stale or came from elsewhere; nothing was done. Open the page again.",
        ),
        NotFound => ("未找到。", "Not found."),
        VoteRefused => ("投票未被接受：", "The vote was not accepted: "),
        VoteRecorded => ("投票已记录。", "Vote recorded."),
        Language => ("语言", "Language"),
        Minutes => ("分钟", "min"),
        Hours => ("小时", "h"),
        Days => ("天", "d"),
        Header => ("表头", "header"),
        Row => ("行", "row"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}
